#include "proxy/tunnel.h"

#include "base/log.h"
#include "net/loop.h"

namespace tlsedge::proxy {

Tunnel::Tunnel(net::Stream& client, net::Stream& origin, Owner& owner, uint64_t idleTimeoutMs)
    : owner_(owner), idleTimer_(new uv_timer_t), idleTimeoutMs_(idleTimeoutMs) {
  uv_timer_init(client.loop(), idleTimer_);
  idleTimer_->data = this;
  client_.stream = &client;
  origin_.stream = &origin;
  client_.peer = &origin_;
  origin_.peer = &client_;
  client.setHandler(&client_);
  origin.setHandler(&origin_);
}

Tunnel::~Tunnel() {
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(idleTimer_), idleTimer_);
  // Normally both streams have closed by now; if not, they close unheard.
  for (Side* side : {&client_, &origin_}) {
    if (side->stream != nullptr) {
      side->stream->setHandler(nullptr);
      side->stream->close();
    }
  }
}

void Tunnel::start(std::string_view toOrigin, std::string_view toClient, bool clientEof) {
  lastActivity_ = uv_now(idleTimer_->loop);
  uv_timer_start(idleTimer_, &Tunnel::onIdleTimer, idleTimeoutMs_, 0);
  client_.stream->write(toClient);
  origin_.stream->write(toOrigin);
  if (clientEof) client_.onStreamEof();
  // Either call may run handlers at once (TLS plaintext already decrypted).
  client_.resumeReading();
  origin_.resumeReading();
}

void Tunnel::abort() {
  // Each close reports through onStreamClosed later, from the loop.
  if (client_.stream != nullptr) client_.stream->close();
  if (origin_.stream != nullptr) origin_.stream->close();
}

void Tunnel::onIdleTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Tunnel*>(timer->data);
  const uint64_t idle = uv_now(timer->loop) - self->lastActivity_;
  if (idle < self->idleTimeoutMs_) {
    uv_timer_start(timer, &Tunnel::onIdleTimer, self->idleTimeoutMs_ - idle, 0);
    return;
  }
  log::debug("tunnel idle for " + std::to_string(idle) + " ms: closing");
  self->abort();
}

void Tunnel::bothDone() {
  // Both peers finished sending and each write side is shut already (or
  // shutting): close each stream once its FIN is out.
  client_.stream->shutdown();
  origin_.stream->shutdown();
}

void Tunnel::Side::resumeReading() {
  if (stream == nullptr || eof || peer->stream == nullptr) return;
  if (peer->stream->writeQueueFull()) return;  // peer->onStreamDrained resumes
  stream->startReading();
}

void Tunnel::Side::onStreamData(const char* data, size_t size) {
  if (peer->stream == nullptr) return;  // the other side is gone; this one is closing
  tunnel.lastActivity_ = uv_now(stream->loop());
  peer->stream->write(std::string_view(data, size));
  if (peer->stream->writeQueueFull()) stream->stopReading();
}

void Tunnel::Side::onStreamDrained() {
  // This stream took its queue down: the other side may be read again.
  peer->resumeReading();
}

void Tunnel::Side::onStreamEof() {
  if (eof) return;  // TLS: close_notify, then the TCP FIN
  eof = true;
  stream->stopReading();
  if (peer->stream == nullptr) return;
  // Half close: the peer's write side ends after what is queued on it.
  peer->stream->shutdownWrite();
  if (peer->eof) tunnel.bothDone();
}

void Tunnel::Side::onStreamError(const std::string& reason) {
  log::debug("tunnel " + std::string(name) + " " + stream->peerIp() + ": " + reason);
}

void Tunnel::Side::onStreamClosed() {
  stream = nullptr;
  if (peer->stream != nullptr) {
    // This side failed or closed: the other delivers what it has queued, then closes.
    peer->stream->stopReading();
    peer->stream->shutdown();
    return;
  }
  tunnel.owner_.onTunnelClosed();  // may delete the tunnel: nothing after this
}

}  // namespace tlsedge::proxy
