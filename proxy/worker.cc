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
  poster_->post([this, g = std::move(generation)]() mutable { generation_ = std::move(g); });
}

void Worker::drain(uint64_t forceAfterMs) {
  poster_->post([this, forceAfterMs] { startDraining(forceAfterMs); });
}

void Worker::run() {
  for (auto& s : sockets_) {
    auto* l = new Listener{{}, this, s.tls};
    listeners_.push_back(l);
    uv_tcp_init(&loop_, &l->handle);
    l->handle.data = l;
    int rc = uv_tcp_open(&l->handle, s.fd);
    if (rc == 0) {
      s.fd = -1;  // the handle owns it now
      rc = uv_listen(reinterpret_cast<uv_stream_t*>(&l->handle), 511, &Worker::onConnection);
    }
    if (rc != 0) {
      log::error("worker " + std::to_string(id_) + ": listen: " + net::uvErrorText(rc));
    }
  }
  uv_run(&loop_, UV_RUN_DEFAULT);
  log::debug("worker " + std::to_string(id_) + " stopped");
}

void Worker::onConnection(uv_stream_t* server, int status) noexcept {
  auto* l = static_cast<Listener*>(server->data);
  Worker* w = l->worker;
  if (status != 0) {
    log::warning("accept: " + net::uvErrorText(status));
    return;
  }
  ClientConnection* c = ClientConnection::accept(*w, server, l->tls ? w->ctx_.get() : nullptr);
  if (c == nullptr) return;
  c->registryIndex = w->connections_.size();
  w->connections_.push_back(c);
}

void Worker::connectionClosed(ClientConnection* connection) {
  size_t i = connection->registryIndex;
  ClientConnection* last = connections_.back();
  connections_[i] = last;
  last->registryIndex = i;
  connections_.pop_back();
  maybeFinish();
}

void Worker::startDraining(uint64_t forceAfterMs) {
  if (draining_) return;
  draining_ = true;
  for (auto* l : listeners_) uv_close(reinterpret_cast<uv_handle_t*>(&l->handle), nullptr);
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
