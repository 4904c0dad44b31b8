#include "proxy/worker.h"

#include "base/log.h"
#include "proxy/client_connection.h"

namespace tlsedge::proxy {

Worker::Worker(int id, ListenerUpdate listeners, bssl::UniquePtr<SSL_CTX> ctx,
               GenerationPtr generation, const acme::ChallengeStore* challenges)
    : id_(id),
      initialListeners_(std::move(listeners)),
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
    if (done) done();
  });
}

void Worker::drain(uint64_t forceAfterMs) {
  poster_->post([this, forceAfterMs] { startDraining(forceAfterMs); });
}

void Worker::run() {
  applyListeners(initialListeners_);
  uv_run(&loop_, UV_RUN_DEFAULT);
  log::debug("worker " + std::to_string(id_) + " stopped");
}

void Worker::applyListeners(ListenerUpdate& update) {
  httpsPort_ = update.httpsPort;
  if (draining_) return;  // listeners are closed for good; the update's fds close with it
  for (uint64_t id : update.close) closeListener(id);
  for (auto& socket : update.open) openListener(socket);
}

void Worker::openListener(ListenSocket& socket) {
  auto* l = new Listener{{}, this, socket.tls(), socket.listenerId()};
  uv_tcp_init(&loop_, &l->handle);
  l->handle.data = l;
  int rc = uv_tcp_open(&l->handle, socket.fd());
  if (rc == 0) {
    socket.release();  // the handle owns it now
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&l->handle), 511, &Worker::onConnection);
  }
  if (rc != 0) {
    log::error("worker " + std::to_string(id_) + ": listen: " + net::uvErrorText(rc));
    net::closeAndDelete(reinterpret_cast<uv_handle_t*>(&l->handle), l);
    return;
  }
  listeners_.push_back(l);
}

// Only the listening socket closes: connections accepted on it are handles
// of their own and finish by themselves. With every worker's socket of the
// address closed, the kernel refuses new connections to it.
void Worker::closeListener(uint64_t id) {
  for (size_t i = 0; i < listeners_.size(); ++i) {
    Listener* l = listeners_[i];
    if (l->id != id) continue;
    listeners_.erase(listeners_.begin() + static_cast<ptrdiff_t>(i));
    net::closeAndDelete(reinterpret_cast<uv_handle_t*>(&l->handle), l);
    return;
  }
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
  for (auto* l : listeners_) net::closeAndDelete(reinterpret_cast<uv_handle_t*>(&l->handle), l);
  listeners_.clear();
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
