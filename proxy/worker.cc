#include "proxy/worker.h"

#include <unistd.h>

#include "base/log.h"
#include "proxy/client_connection.h"

namespace tlsedge::proxy {

Worker::Worker(int id, std::vector<ListenSocket> sockets, uint16_t httpsPort,
               bssl::UniquePtr<SSL_CTX> ctx, GenerationPtr generation,
               const acme::ChallengeStore* challenges)
    : id_(id),
      sockets_(std::move(sockets)),
      httpsPort_(httpsPort),
      ctx_(std::move(ctx)),
      generation_(std::move(generation)),
      challenges_(challenges),
      upstreams_(&loop_) {
  uv_loop_init(&loop_);
  poster_ = std::make_unique<net::Poster>(&loop_);
  uv_timer_init(&loop_, &forceTimer_);
  forceTimer_.data = this;
}

Worker::~Worker() {
  join();
  uv_loop_close(&loop_);
  for (auto* l : listeners_) delete l;
  for (const auto& s : sockets_) {
    if (s.fd >= 0) ::close(s.fd);
  }
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::publish(GenerationPtr generation) {
  poster_->post([this, g = std::move(generation)]() mutable {
    generation_ = std::move(g);
    updateAccepting();  // the limits may have changed
  });
}

void Worker::drain(uint64_t forceAfterMs) {
  poster_->post([this, forceAfterMs] { startDraining(forceAfterMs); });
}

void Worker::run() {
  for (auto& s : sockets_) {
    addListener(s.fd, s.tls);
    s.fd = -1;  // the acceptor owns it now (and closed it if it failed)
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  log::debug("worker " + std::to_string(id_) + " stopped: " + stats_.summary());
}

Worker::Listener* Worker::addListener(int fd, bool tls) {
  auto* l = new Listener{nullptr, tls};
  listeners_.push_back(l);
  int rc = 0;
  l->acceptor = net::Acceptor::start(
      &loop_, fd, [this, tls](int accepted) { onAccepted(accepted, tls); }, &rc);
  if (l->acceptor == nullptr) {
    log::error("worker " + std::to_string(id_) + ": listen: " + net::uvErrorText(rc));
  } else if (acceptPaused_) {
    l->acceptor->pause();  // joins the others: the worker is at a limit
  }
  return l;
}

void Worker::onAccepted(int fd, bool tls) {
  ClientConnection* c = ClientConnection::accept(*this, fd, tls ? ctx_.get() : nullptr);
  if (c == nullptr) return;
  c->registryIndex = connections_.size();
  connections_.push_back(c);
  updateAccepting();
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
    if (l->acceptor == nullptr) continue;
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

void Worker::startDraining(uint64_t forceAfterMs) {
  if (draining_) return;
  draining_ = true;
  for (auto* l : listeners_) {
    if (l->acceptor != nullptr) l->acceptor->close();
    l->acceptor = nullptr;
  }
  upstreams_.closeIdle();
  // drain() may close connections, which edits the registry: iterate a copy.
  auto snapshot = connections_;
  for (auto* c : snapshot) c->drain();
  uv_timer_start(
      &forceTimer_,
      [](uv_timer_t* t) {
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
  uv_close(reinterpret_cast<uv_handle_t*>(&forceTimer_), nullptr);
  poster_->close();  // with nothing else open, uv_run returns
}

}  // namespace tlsedge::proxy
