#include "net/signal_watcher.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace tlsedge::net {
namespace {

sigset_t controlSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
  return set;
}

}  // namespace

void blockControlSignals() {
  const sigset_t set = controlSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalWatcher::~SignalWatcher() {
  if (fd_ >= 0) ::close(fd_);
}

Status SignalWatcher::start(uv_loop_t* loop, Callback callback) {
  const sigset_t set = controlSignals();
  fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) return Error{std::string("signalfd: ") + std::strerror(errno)};
  callback_ = std::move(callback);
  poll_ = new uv_poll_t;
  poll_->data = this;
  if (int rc = uv_poll_init(loop, poll_, fd_); rc != 0) {
    delete poll_;
    poll_ = nullptr;
    return Error{std::string("signalfd poll: ") + uv_strerror(rc)};
  }
  uv_poll_start(poll_, UV_READABLE, &SignalWatcher::onReadable);
  return Ok{};
}

void SignalWatcher::close() {
  if (poll_ == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(poll_),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_poll_t*>(h); });
  poll_ = nullptr;
}

void SignalWatcher::onReadable(uv_poll_t* handle, int status, int) noexcept {
  auto* self = static_cast<SignalWatcher*>(handle->data);
  if (status < 0) return;
  signalfd_siginfo info;
  // The callback may close the watcher (SIGTERM): stop reading then.
  while (self->poll_ != nullptr && ::read(self->fd_, &info, sizeof info) == sizeof info) {
    self->callback_(static_cast<int>(info.ssi_signo));
  }
}

}  // namespace tlsedge::net
