// Replica: keeps a collection of this node's state directory a copy of
// the fleet's: the certificate store (<state_dir>/certs, from PREFIX/certs/
// in etcd) and the admin API's sites (<state_dir>/sites, from
// PREFIX/sites/), each by its own replica, so that the node serves from its
// own disk and the handshake path never waits on etcd. A collection is
// groups (certs/NAME, sites/NAME), each copied whole.
//
// A start whose copy recorded a revision (<state_dir>/fleet-copy.json for
// the certificates, fleet-copy-sites.json for the sites,
// with etcd's cluster id and the prefix) for this cluster and prefix, not
// past etcd's revision and not emptied since, resumes from it: the watch
// replays what changed meanwhile (a restart reads no store at all).
// Otherwise, or when etcd has compacted that revision away, a full read
// (paginated, at one revision) brings the local store to that revision:
// entries that differ are written (1000 at a time, made durable together:
// FileStorage::storeGroups), entries etcd does not hold are removed. Then
// one watch from the next revision: the entries each revision touches are
// read again at that revision and written. Every entry written or removed
// is handed to `changed` (for certificates, the certificate watcher applies
// it to the served snapshot in O(changed); for sites, the daemon serves its
// sites read again: admin/sites_api.h); the revision reached is recorded
// after. Private
// keys are opened with the fleet key and written 0600, as every entry of
// the state directory.
//
// When etcd cannot be reached the node keeps serving what its store holds
// (a restart serves from it too) and the replica tries again, backing off
// to 10 s; a watch whose start revision was compacted reads everything
// again. Both are logged and counted.
//
// Thread: the control loop; etcd reads and disk writes run on libuv's
// thread pool, one batch at a time, in revision order.
// Lifetime: close() before the loop ends; pool work still running when it
// is destroyed finishes without calling back.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "certstore/file_storage.h"
#include "fleet/collection.h"
#include "fleet/etcd_storage.h"
#include "fleet/etcd_watch.h"

namespace tlsedge::fleet {

struct ReplicaStats {
  uint64_t fullSyncs = 0;  // full reads completed (the first, then resyncs)
  bool caughtUp = false;   // a full read or a resume completed once
  uint64_t resyncs = 0;    // full reads because the watch fell behind compaction
  uint64_t written = 0;    // entries written or removed locally
  uint64_t failures = 0;   // reads, watches or entries that failed
  bool connected = false;  // in sync and watching
  int64_t revision = 0;    // the fleet revision the local store reflects
};

class Replica {
 public:
  using Changed = std::function<void(const std::string& name)>;

  Replica(uv_loop_t* loop, std::shared_ptr<const EtcdStorage> fleet,
          std::shared_ptr<certstore::FileStorage> local, Collection collection,
          std::unique_ptr<EtcdWatch> watch, Changed changed);
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  void start();
  void close();
  const ReplicaStats& stats() const { return stats_; }
  uint64_t watchStreams() const { return watch_->streams(); }

  // The outcome of a pool batch: the revision reached and what was written.
  struct Outcome {
    Status status = Ok{};
    int64_t revision = 0;
    std::string cluster;            // etcd's cluster id, for the record
    bool resumed = false;           // from the copy's recorded revision: nothing read
    bool full = false;              // a full read
    std::set<std::string> changed;  // entry names written or removed
    uint64_t failedEntries = 0;
  };

 private:
  void catchUp(bool mayResume);
  void watchFrom(int64_t revision);
  void applyNext();
  void retryLater(std::function<void()> what);
  void finished(Outcome outcome);
  void recordCopy();
  static void onTimer(uv_timer_t* timer) noexcept;

  uv_loop_t* loop_;
  std::shared_ptr<const EtcdStorage> fleet_;
  std::shared_ptr<certstore::FileStorage> local_;
  Collection collection_;
  std::unique_ptr<EtcdWatch> watch_;
  Changed changed_;
  uv_timer_t* timer_ = nullptr;
  std::function<void()> retry_;
  std::chrono::milliseconds backoff_{0};
  std::deque<std::pair<int64_t, std::set<std::string>>> queue_;  // revision, entries touched
  bool busy_ = false;                                            // a batch is on the pool
  bool closed_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // pool callbacks check it
  ReplicaStats stats_;
  std::string cluster_;      // etcd's cluster id, from the first read
  bool incomplete_ = false;  // an entry did not open since the last full read: no record
};

// The pool's part, blocking (exposed for tests): the revision to watch on
// from, resumed from the copy's record (`mayResume`) or after a full read;
// the whole fleet store into `local`; the entries `names` as of `revision`
// (0: the newest) into `local`.
Replica::Outcome resumeOrSyncAll(const EtcdStorage& fleet, certstore::FileStorage& local,
                                 const Collection& collection, bool mayResume);
Replica::Outcome syncAll(const EtcdStorage& fleet, certstore::FileStorage& local,
                         const Collection& collection, const std::string& cluster);
Replica::Outcome syncEntries(const EtcdStorage& fleet, certstore::FileStorage& local,
                             const Collection& collection, const std::set<std::string>& names,
                             int64_t revision, const std::string& cluster);

}  // namespace tlsedge::fleet
