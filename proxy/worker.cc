#include "proxy/worker.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "base/log.h"
#include "net/proxy_header.h"
#include "proxy/client_connection.h"

namespace tlsedge::proxy {

Worker::Worker(int id, ListenerUpdate listeners, bssl::UniquePtr<SSL_CTX> ctx,
               GenerationPtr generation, const acme::ChallengeStore* challenges,
               AccessLogWriter& accessLog)
    : id_(id),
      initialListeners_(std::move(listeners)),
      ctx_(std::move(ctx)),
      generation_(std::move(generation)),
      certificates_(new CertificateSlot{generation_->selector, 1}),
      challenges_(challenges),
      upstreams_(&loop_, stats_),
      accessLog_(&loop_, accessLog) {
  uv_loop_init(&loop_);
  poster_ = std::make_unique<net::Poster>(&loop_);
  uv_timer_init(&loop_, &forceTimer_);
  forceTimer_.data = this;
  uv_check_init(&loop_, &deferredCheck_);
  deferredCheck_.data = this;
}

void Worker::defer(Deferred* d) {
  if (d->queued_) return;
  d->queued_ = true;
  if (deferred_.empty()) {
    uv_check_start(&deferredCheck_, [](uv_check_t* check) noexcept {
      static_cast<Worker*>(check->data)->runDeferred();
    });
  }
  deferred_.push_back(d);
}

void Worker::cancelDeferred(Deferred* d) {
  if (!d->queued_) return;
  d->queued_ = false;
  std::erase(deferred_, d);
  if (deferred_.empty()) uv_check_stop(&deferredCheck_);
  if (running_ != nullptr)
    std::replace(running_->begin(), running_->end(), d, static_cast<Deferred*>(nullptr));
}

void Worker::runDeferred() {
  // A run may defer again (itself or another): that waits for the next
  // iteration's check.
  std::vector<Deferred*> batch;
  batch.swap(deferred_);
  uv_check_stop(&deferredCheck_);
  running_ = &batch;
  for (Deferred*& d : batch) {
    if (d == nullptr) continue;  // cancelled by an earlier one of the batch
    Deferred* run = std::exchange(d, nullptr);
    run->queued_ = false;
    run->runDeferred();
  }
  running_ = nullptr;
}

Worker::~Worker() {
  join();
  uv_loop_close(&loop_);
  for (auto* l : listeners_) delete l;
  releaseCertificates(certificates_);
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::reconfigure(GenerationPtr generation, ListenerUpdate listeners,
                         std::function<void()> applied) {
  // std::function needs a copyable callable; the update owns fds. If the
  // worker has stopped, the post is dropped and the shared_ptr closes them.
  auto update = std::make_shared<ListenerUpdate>(std::move(listeners));
  poster_->post([this, g = std::move(generation), update, done = std::move(applied)]() mutable {
    generation_ = std::move(g);
    applyListeners(*update);
    updateAccepting();  // the limits may have changed
    // HTTP/2 connections live long: GOAWAY sends their clients to a new
    // connection under the new rules.
    for (ClientConnection* c : connections_) c->reloaded();
    if (done) done();
  });
}

void Worker::rotateTicketKeys(tls::TicketKeyRingPtr ring, std::function<void()> applied) {
  poster_->post([this, r = std::move(ring), done = std::move(applied)]() mutable {
    setTicketKeys(ctx_.get(), std::move(r));
    if (done) done();
  });
}

void Worker::publishCertificates(std::shared_ptr<const certstore::Selector> certificates) {
  poster_->post([this, c = std::move(certificates)]() mutable {
    CertificateSlot* previous = certificates_;
    certificates_ = new CertificateSlot{std::move(c), 1};
    releaseCertificates(previous);
  });
}

void Worker::snapshotStats(std::function<void(const WorkerStats&, size_t)> done) {
  poster_->post([this, d = std::move(done)] {
    stats_.clientsTracked = clients_.size();
    stats_.clientEvictions = clients_.evictions();
    d(stats_, connections_.size());
  });
}

void Worker::drain(uint64_t forceAfterMs, std::function<void()> drained, bool closeIdle) {
  poster_->post([this, forceAfterMs, d = std::move(drained), closeIdle]() mutable {
    startDraining(forceAfterMs, std::move(d), closeIdle);
  });
}

void Worker::run() {
  applyListeners(initialListeners_);
  uv_run(&loop_, UV_RUN_DEFAULT);
  log::debug("worker " + std::to_string(id_) + " stopped: " + stats_.summary());
}

void Worker::applyListeners(ListenerUpdate& update) {
  httpsPort_ = update.httpsPort;
  if (draining_) return;  // listeners are closed for good; the update's fds close with it
  for (uint64_t id : update.close) closeListener(id);
  for (auto& socket : update.open) openListener(socket);
}

// Starts accepting on the socket, paused if the worker is at a limit.
void Worker::openListener(ListenSocket& socket) {
  const bool tls = socket.tls();
  const bool proxyProtocol = socket.proxyProtocol();
  int rc = 0;
  net::Acceptor* acceptor = net::Acceptor::start(
      &loop_, socket.fd(),
      [this, tls, proxyProtocol](int accepted, const sockaddr* peer) {
        onAccepted(accepted, peer, tls, proxyProtocol);
      },
      &rc);
  socket.release();  // the acceptor owns it now (and closed it if it failed)
  if (acceptor == nullptr) {
    log::error("worker " + std::to_string(id_) + ": listen: " + net::uvErrorText(rc));
    return;
  }
  if (acceptPaused_) acceptor->pause();  // joins the others: the worker is at a limit
  listeners_.push_back(new Listener{acceptor, tls, proxyProtocol, socket.listenerId()});
}

// Only the listening socket closes: connections accepted on it are handles
// of their own and finish by themselves. With every worker's socket of the
// address closed, the kernel refuses new connections to it.
// A worker may hold several sockets of one listener (inherited ones).
void Worker::closeListener(uint64_t id) {
  std::erase_if(listeners_, [id](Listener* l) {
    if (l->id != id) return false;
    l->acceptor->close();
    delete l;
    return true;
  });
}

void Worker::onAccepted(int fd, const sockaddr* peer, bool tls, bool proxyProtocol) {
  auto mode = net::Stream::ProxyMode::kNone;
  if (proxyProtocol) {
    const auto& trusted = generation_->config->proxyProtocolTrusted;
    const bool fromBalancer = std::any_of(trusted.begin(), trusted.end(),
                                          [peer](const auto& n) { return n.contains(peer); });
    mode = fromBalancer ? net::Stream::ProxyMode::kRequired : net::Stream::ProxyMode::kRefused;
  }
  // Behind a balancer the client is known once its PROXY header is read.
  ClientTable::Entry* client = nullptr;
  if (mode != net::Stream::ProxyMode::kRequired) {
    const ClientTable::Admission admission = admitClient(peer, tls);
    if (admission.refused) {
      // A reset: no TIME_WAIT left here for each refused connection.
      const linger reset{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
      ::close(fd);
      return;
    }
    client = admission.entry;
  }
  ClientConnection* c =
      ClientConnection::accept(*this, fd, peer, tls ? ctx_.get() : nullptr, mode, client);
  if (c == nullptr) return;
  ++(tls ? stats_.acceptedTls : stats_.acceptedPlain);
  c->registryIndex = connections_.size();
  connections_.push_back(c);
  updateAccepting();
}

ClientTable::Admission Worker::admitClient(const sockaddr* client, bool handshake) {
  const ClientTable::Admission admission =
      clients_.admit(generation_->config->limits.perClient, client, handshake, uv_now(&loop_));
  if (admission.refused) {
    ++stats_.clientLimited[admission.limit];
    if (log::enabled(log::Level::kDebug)) {
      log::debug("client " + net::formatIp(client) + ": refused: per-client limit " +
                 ClientTable::kLimitNames[admission.limit]);
    }
  }
  return admission;
}

void Worker::clientClosed(ClientTable::Entry* entry) {
  if (entry != nullptr)
    clients_.closed(generation_->config->limits.perClient, entry, uv_now(&loop_));
}

void Worker::handshakeFinished() {
  --handshakes_;
  updateAccepting();
}

void Worker::updateAccepting() {
  if (draining_) return;
  const conf::Limits& limits = generation_->config->limits;
  const bool full =
      connections_.size() >= limits.maxConnections || handshakes_ >= limits.maxHandshakes;
  if (full == acceptPaused_) return;
  acceptPaused_ = full;
  if (full) ++stats_.acceptPauses;
  log::debug("worker " + std::to_string(id_) + ": accepting " + (full ? "paused" : "resumed") +
             " at " + std::to_string(connections_.size()) + " connection(s), " +
             std::to_string(handshakes_) + " handshake(s)");
  for (auto* l : listeners_) {
    if (full) {
      l->acceptor->pause();
    } else {
      l->acceptor->resume();
    }
  }
}

void Worker::connectionClosed(ClientConnection* connection) {
  size_t i = connection->registryIndex;
  ClientConnection* last = connections_.back();
  connections_[i] = last;
  last->registryIndex = i;
  connections_.pop_back();
  updateAccepting();
  maybeFinish();
}

void Worker::startDraining(uint64_t forceAfterMs, std::function<void()> drained, bool closeIdle) {
  if (draining_) return;
  draining_ = true;
  closeIdle_ = closeIdle;
  drained_ = std::move(drained);
  for (auto* l : listeners_) {
    l->acceptor->close();
    delete l;
  }
  listeners_.clear();
  upstreams_.closeIdle();
  // drain() may close connections, which edits the registry: iterate a copy.
  auto snapshot = connections_;
  for (auto* c : snapshot) c->drain();
  uv_timer_start(
      &forceTimer_,
      [](uv_timer_t* t) noexcept {
        auto* self = static_cast<Worker*>(t->data);
        log::warning("shutdown timeout: closing " + std::to_string(self->connections_.size()) +
                     " connection(s) still open");
        auto left = self->connections_;
        for (auto* c : left) c->abort();
      },
      forceAfterMs, 0);
  maybeFinish();
}

void Worker::maybeFinish() {
  if (!draining_ || finished_ || !connections_.empty()) return;
  finished_ = true;
  upstreams_.closeIdle();
  accessLog_.close();
  uv_close(reinterpret_cast<uv_handle_t*>(&forceTimer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&deferredCheck_), nullptr);
  if (drained_) drained_();
  poster_->close();  // with nothing else open, uv_run returns
}

}  // namespace tlsedge::proxy
