// EtcdWatch: one etcd watch stream on a loop: every change under a prefix
// from a revision on, as etcd commits them (POST /v3/watch through the JSON
// gateway, one JSON object per line of an open-ended response;
// docs/etcd.md, "watch").
//
// The request carries `Grpc-Metadata-hasleader: true`, so a member that
// loses its quorum ends the stream (it would otherwise stay silent). A
// start revision that etcd has compacted away ends the stream with the
// compaction's revision: the caller reads everything again and watches on
// from there. Each start uses the next endpoint after one whose stream
// failed.
//
// A stream can also go quiet without ending: its member frozen, or cut off
// behind a connection that stays open. So every kProbeEvery the watch asks
// the same member for a linearizable read of one key (which needs the
// member to be live and to reach the leader); a failed or late answer
// (the configured timeout) ends the stream like any failure, and the next
// start goes to another member.
//
// Thread: the loop given to create(). Lifetime: stop() drops the stream;
// no callback runs after it. close() also releases the probe's timer and
// must come while the loop still runs (the owner's close); the destructor
// closes what is left.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "conf/config.h"
#include "fleet/etcd_client.h"
#include "http/http_client.h"

namespace tlsedge::fleet {

class EtcdWatch {
 public:
  struct Event {
    bool deleted = false;
    KeyValue kv;  // a delete has the key and its mod_revision only
  };
  // The events of one revision (one put, a txn's writes, a range delete).
  // It must not stop() the watch.
  using OnEvents = std::function<void(int64_t revision, std::vector<Event> events)>;
  // The stream ended (it never ends well): why, and for a compacted start
  // revision the revision compacted to (0 otherwise).
  using OnEnd = std::function<void(Error why, int64_t compactRevision)>;

  static constexpr std::chrono::milliseconds kProbeEvery{10000};

  static Result<std::unique_ptr<EtcdWatch>> create(uv_loop_t* loop,
                                                   const conf::EtcdStorage& config);
  ~EtcdWatch() { close(); }

  // Watches every key starting with `prefix` from `fromRevision` on.
  // Replaces a stream already running (its callbacks no longer run).
  void start(const std::string& prefix, int64_t fromRevision, OnEvents onEvents, OnEnd onEnd);
  void stop();
  // stop(), and the timer closed: start() no longer works.
  void close();
  bool running() const { return request_ != 0; }
  // Streams opened so far (each start and each endpoint tried), for metrics.
  uint64_t streams() const { return streams_; }

 private:
  EtcdWatch(uv_loop_t* loop, std::unique_ptr<http::HttpClient> http,
            std::vector<std::string> endpoints);
  // One line of the stream; false ends it (`end_` then says why).
  bool line(std::string_view text);
  void ended(Error why);
  static void onProbeTimer(uv_timer_t* timer) noexcept;
  void probe();

  std::unique_ptr<http::HttpClient> http_;
  std::vector<std::string> endpoints_;
  size_t next_ = 0;
  uint64_t request_ = 0;  // the stream's HttpClient request id; 0: none
  uint64_t probe_ = 0;    // the liveness read's request id; 0: none
  uv_timer_t* probeTimer_;
  std::string prefix_;
  std::string pending_;  // the part of a line received so far
  OnEvents onEvents_;
  OnEnd onEnd_;
  Error endWhy_;
  int64_t compactRevision_ = 0;
  uint64_t streams_ = 0;
};

}  // namespace tlsedge::fleet
