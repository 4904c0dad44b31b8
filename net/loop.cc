#include "net/loop.h"

#include "base/log.h"

namespace tlsedge::net {

Poster::Poster(uv_loop_t* loop) {
  uv_async_init(loop, &async_, &Poster::onAsync);
  async_.data = this;
}

Poster::~Poster() = default;

void Poster::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    queue_.push_back(std::move(fn));
  }
  uv_async_send(&async_);
}

void Poster::close() {
  drain();
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    queue_.clear();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
}

void Poster::onAsync(uv_async_t* handle) noexcept { static_cast<Poster*>(handle->data)->drain(); }

void Poster::drain() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(queue_);
  }
  for (auto& fn : batch) {
    try {
      fn();
    } catch (const std::exception& e) {
      // A posted function must not take the loop down with it.
      log::error(std::string("posted task failed: ") + e.what());
    }
  }
}

std::string uvErrorText(int code) {
  return std::string(uv_err_name(code)) + ": " + uv_strerror(code);
}

}  // namespace tlsedge::net
