#include "net/acceptor.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "base/log.h"
#include "net/loop.h"

namespace tlsedge::net {
namespace {
// Connections accepted per readiness event. One, as nginx does by default:
// the poll is level-triggered, so a listener with more queued is reported
// again by the next epoll_wait (which the loop makes anyway), and the usual
// case (one new connection) costs no accept4() that ends in EAGAIN. A busy
// listener cannot keep the loop from its other connections either.
constexpr int kAcceptBatch = 1;
// After a resource error (out of fds, memory): a pause before trying again,
// or the level-triggered poll would spin on the same error.
constexpr uint64_t kBackoffMs = 100;
}  // namespace

Acceptor::Acceptor(int fd, OnAccept onAccept) : fd_(fd), onAccept_(std::move(onAccept)) {}

Acceptor::~Acceptor() {
  if (fd_ >= 0) ::close(fd_);
}

Acceptor* Acceptor::start(uv_loop_t* loop, int listenFd, OnAccept onAccept, int* error) {
  const int one = 1;  // not TCP (a test's Unix socket): nothing to inherit
  (void)::setsockopt(listenFd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto* a = new Acceptor(listenFd, std::move(onAccept));
  int rc = uv_poll_init(loop, &a->poll_, listenFd);
  if (rc != 0) {
    *error = rc;
    delete a;  // no handle was initialized; closes the fd
    return nullptr;
  }
  a->poll_.data = a;
  uv_timer_init(loop, &a->backoff_);
  a->backoff_.data = a;
  a->handlesOpen_ = 2;
  a->watch();
  return a;
}

void Acceptor::watch() {
  if (paused_ || backingOff_ || closing_) return;
  uv_poll_start(&poll_, UV_READABLE, &Acceptor::onReadable);
}

void Acceptor::pause() {
  if (paused_) return;
  paused_ = true;
  if (!closing_) uv_poll_stop(&poll_);
}

void Acceptor::resume() {
  if (!paused_) return;
  paused_ = false;
  watch();
}

void Acceptor::close() {
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), &Acceptor::onHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&backoff_), &Acceptor::onHandleClosed);
}

void Acceptor::onHandleClosed(uv_handle_t* handle) noexcept {
  auto* a = static_cast<Acceptor*>(handle->data);
  if (--a->handlesOpen_ == 0) delete a;
}

void Acceptor::onReadable(uv_poll_t* poll, int status, int) noexcept {
  auto* a = static_cast<Acceptor*>(poll->data);
  if (a->closing_) return;
  if (status < 0) {
    log::warning("accept: poll: " + uvErrorText(status));
    return;
  }
  a->acceptSome();
}

void Acceptor::onBackoffOver(uv_timer_t* timer) noexcept {
  auto* a = static_cast<Acceptor*>(timer->data);
  a->backingOff_ = false;
  a->watch();
}

void Acceptor::acceptSome() {
  // onAccept_ may pause or close this acceptor: checked before every accept.
  for (int i = 0; i < kAcceptBatch && !paused_ && !closing_; ++i) {
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      onAccept_(fd, reinterpret_cast<const sockaddr*>(&peer));
      continue;
    }
    const int err = errno;
    switch (err) {
      case EAGAIN:
#if EAGAIN != EWOULDBLOCK
      case EWOULDBLOCK:
#endif
        return;  // the queue is empty
      case EINTR:
      case ECONNABORTED:  // the client gave up while queued
      case EPROTO:
      case EPERM:  // refused by a firewall rule
        continue;
      default:  // EMFILE, ENFILE, ENOBUFS, ENOMEM, ...
        log::warning(std::string("accept: ") + std::strerror(err) + "; retrying in " +
                     std::to_string(kBackoffMs) + " ms");
        backingOff_ = true;
        uv_poll_stop(&poll_);
        uv_timer_start(&backoff_, &Acceptor::onBackoffOver, kBackoffMs, 0);
        return;
    }
  }
}

}  // namespace tlsedge::net
