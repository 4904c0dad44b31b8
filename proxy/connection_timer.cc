#include "proxy/connection_timer.h"

namespace tlsedge::proxy {

void ConnectionTimer::init(uv_loop_t* loop, Owner* owner) {
  owner_ = owner;
  uv_timer_init(loop, &timer_);
  timer_.data = this;
}

void ConnectionTimer::enter(Phase phase, conf::Duration timeout, bool restart) {
  if (phase == phase_ && !restart) return;
  phase_ = phase;
  if (phase == Phase::kNone) {
    uv_timer_stop(&timer_);
    return;
  }
  uint64_t ms = timeout.count() > 0 ? static_cast<uint64_t>(timeout.count()) : 0;
  const auto trimMs = static_cast<uint64_t>(kTrimAfter.count());
  trimDue_ = phase == Phase::kIdle && ms > trimMs;
  if (trimDue_) {
    idleRest_ = ms - trimMs;
    ms = trimMs;
  }
  uv_timer_start(&timer_, &ConnectionTimer::onTimeout, ms, 0);
}

void ConnectionTimer::close() {
  phase_ = Phase::kNone;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) noexcept {
    static_cast<ConnectionTimer*>(h->data)->owner_->onTimerClosed();
  });
}

void ConnectionTimer::onTimeout(uv_timer_t* timer) noexcept {
  auto* self = static_cast<ConnectionTimer*>(timer->data);
  if (self->phase_ == Phase::kIdle && self->trimDue_) {
    self->trimDue_ = false;
    uv_timer_start(timer, &ConnectionTimer::onTimeout, self->idleRest_, 0);
    self->owner_->onIdleTrim();
    return;
  }
  const Phase phase = self->phase_;
  self->phase_ = Phase::kNone;  // expired; the owner re-enters a phase if it goes on
  self->owner_->onDeadline(phase);
}

}  // namespace tlsedge::proxy
