// Worker: one thread, one uv_loop_t, its own SO_REUSEPORT listeners,
// connections, SSL_CTX, upstream pool and buffers (h2o's one context per
// thread). Nothing a worker owns is touched from another thread: the control
// loop talks to it only through post().
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "net/acceptor.h"
#include "net/loop.h"
#include "proxy/access_log.h"
#include "proxy/client_limits.h"
#include "proxy/generation.h"
#include "proxy/listener_update.h"
#include "proxy/upstream/exchange.h"
#include "proxy/worker_stats.h"
#include "tls/tls_context.h"

namespace tlsedge::proxy {

class ClientConnection;

// One published certificate snapshot as a worker holds it. `users` is a
// plain integer touched only on the worker thread: taking a snapshot for a
// handshake is no shared atomic write (the shared_ptr is copied once per
// publication, not per connection). The slot dies when it is no longer the
// current one and its last handshake is done: the per-worker grace period.
struct CertificateSlot {
  std::shared_ptr<const certstore::Selector> certificates;
  size_t users = 0;  // the worker (while current) + handshakes using it
};

// Work a connection defers to the end of the current loop iteration, after
// every I/O callback of it (Worker::defer): e.g. an HTTP/2 connection sends
// what several origin responses produced in one TLS record and one write.
class Deferred {
 public:
  virtual void runDeferred() = 0;

 protected:
  virtual ~Deferred() = default;

 private:
  friend class Worker;
  bool queued_ = false;
};

class Worker {
 public:
  // Called on the control loop. `listeners` (its sockets, and the https
  // port that goes into redirect Locations) is applied when the thread starts.
  Worker(int id, ListenerUpdate listeners, bssl::UniquePtr<SSL_CTX> ctx, GenerationPtr generation,
         const acme::ChallengeStore* challenges, AccessLogWriter& accessLog);
  ~Worker();

  // Control loop: starts the thread, which runs until the loop has nothing left.
  void start();
  // Any thread (reload): new connections use `generation` from now on
  // (HTTP/2 connections are sent GOAWAY so that their clients move on);
  // `listeners` opens and closes listeners (connections accepted on a closed
  // one carry on). Then `applied` runs on the worker thread.
  void reconfigure(GenerationPtr generation, ListenerUpdate listeners,
                   std::function<void()> applied);
  // Any thread: new handshakes make and check session tickets with `ring`
  // from now on (the ring is stored in this worker's SSL_CTX on its thread).
  // Then `applied` runs on the worker thread.
  void rotateTicketKeys(tls::TicketKeyRingPtr ring, std::function<void()> applied);
  // Any thread (control loop: SIGHUP, hot swap): new handshakes select from
  // `certificates` from now on; handshakes in progress finish with the
  // snapshot they took, established connections keep the credentials their
  // SSL installed. Certificates are published apart from the Generation so a
  // certificate swap rebuilds no routes.
  void publishCertificates(std::shared_ptr<const certstore::Selector> certificates);
  // Any thread (control loop: a metrics scrape): `done` runs on the worker
  // thread with its stats and its number of open connections (it copies
  // what it needs and posts back). Dropped unrun once the worker stopped.
  void snapshotStats(std::function<void(const WorkerStats&, size_t connections)> done);
  // Any thread: stop accepting, let in-flight requests finish, close idle
  // keep-alive connections. `forceAfterMs` later, close whatever is left.
  // `drained` (optional) runs on the worker thread once its last connection
  // is closed, just before its loop ends. With `closeIdle` false (an
  // upgrade: a successor accepts on the same sockets) idle keep-alive
  // connections are not closed at once, which races with a client sending
  // its next request, but answer that request with `Connection: close`, or
  // close at their idle timeout.
  void drain(uint64_t forceAfterMs, std::function<void()> drained = {}, bool closeIdle = true);
  void join();

  // --- worker thread only ---
  uv_loop_t* loop() { return &loop_; }
  const GenerationPtr& generation() const { return generation_; }
  const acme::ChallengeStore& challenges() const { return *challenges_; }
  uint16_t httpsPort() const { return httpsPort_; }
  UpstreamPool& upstreams() { return upstreams_; }
  bool draining() const { return draining_; }
  // Draining, and idle keep-alive connections close now (not an upgrade).
  bool closesIdle() const { return draining_ && closeIdle_; }
  void connectionClosed(ClientConnection* connection);
  // TLS handshakes in progress (limits.max_handshakes).
  void handshakeStarted() { ++handshakes_; }
  void handshakeFinished();
  WorkerStats& stats() { return stats_; }
  // Per-client limits (limits.per_client of the current generation): one
  // more connection from `client` (`handshake`: a TLS handshake to come),
  // admitted or refused (counted and logged here; the caller closes it).
  // An admitted entry (null: not limited) goes back through clientClosed().
  ClientTable::Admission admitClient(const sockaddr* client, bool handshake);
  void clientClosed(ClientTable::Entry* entry);
  // A client connection's id, unique in this worker for its lifetime.
  uint64_t nextConnectionId() { return ++connectionIds_; }
  // A handshake takes the current certificate snapshot (never null) and
  // gives it back exactly once when done with it.
  CertificateSlot* acquireCertificates() {
    ++certificates_->users;
    return certificates_;
  }
  void releaseCertificates(CertificateSlot* slot) {
    if (--slot->users == 0) delete slot;
  }
  AccessLogBuffer& accessLog() { return accessLog_; }
  // `d` runs once at the end of this loop iteration (again if deferred again
  // from its run). cancelDeferred() before `d` goes away.
  void defer(Deferred* d);
  void cancelDeferred(Deferred* d);

 private:
  struct Listener {
    net::Acceptor* acceptor;  // closing it (it deletes itself) ends the Listener
    bool tls;
    bool proxyProtocol;  // PROXY headers from proxy_protocol.trusted
    uint64_t id;         // ListenerSet's
  };
  void onAccepted(int fd, const sockaddr* peer, bool tls, bool proxyProtocol);
  // Pauses accepting at limits.max_connections or max_handshakes, resumes
  // below (the kernel backlog holds new connections meanwhile).
  void updateAccepting();
  void run();
  void applyListeners(ListenerUpdate& update);
  void openListener(ListenSocket& socket);
  void closeListener(uint64_t id);
  void startDraining(uint64_t forceAfterMs, std::function<void()> drained, bool closeIdle);
  void maybeFinish();

  int id_;
  uv_loop_t loop_;
  std::unique_ptr<net::Poster> poster_;
  ListenerUpdate initialListeners_;  // applied by run()
  std::vector<Listener*> listeners_;
  uint16_t httpsPort_ = 443;
  bssl::UniquePtr<SSL_CTX> ctx_;
  GenerationPtr generation_;
  CertificateSlot* certificates_;  // current; holds one of its users
  const acme::ChallengeStore* challenges_;
  UpstreamPool upstreams_;
  ClientTable clients_;
  std::vector<ClientConnection*> connections_;  // unordered; removal swaps with last
  size_t handshakes_ = 0;                       // TLS handshakes in progress
  bool acceptPaused_ = false;
  WorkerStats stats_;
  uint64_t connectionIds_ = 0;
  AccessLogBuffer accessLog_;
  uv_timer_t forceTimer_;
  uv_check_t deferredCheck_;                   // active only while deferred_ is not empty
  std::vector<Deferred*> deferred_;            // defer()'s, in order
  std::vector<Deferred*>* running_ = nullptr;  // the batch runDeferred() is running
  void runDeferred();
  bool draining_ = false;
  bool closeIdle_ = true;  // drain()'s
  bool finished_ = false;
  std::function<void()> drained_;  // drain()'s
  std::thread thread_;
};

}  // namespace tlsedge::proxy
