// Event-loop plumbing: the one cross-thread primitive (Poster) and small
// libuv helpers.
//
// Threading contract (libuv's own): a uv_loop_t and every handle on it belong
// to the thread running the loop. The only way another thread acts on a loop
// is Poster::post(), whose function then runs on the loop's thread.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tlsedge::net {

// A mutex-guarded queue plus a uv_async_t. post() may be called from any
// thread; the functions run on the loop's thread in post order. uv_async_send
// calls coalesce, so each wake-up drains the whole queue.
class Poster {
 public:
  // Call on the loop's thread (or before the loop runs).
  explicit Poster(uv_loop_t* loop);
  ~Poster();  // after close() completed, or if the loop never ran
  Poster(const Poster&) = delete;
  Poster& operator=(const Poster&) = delete;

  // Any thread. After close(), functions are dropped unrun.
  void post(std::function<void()> fn);

  // Loop thread: stops accepting posts and closes the async handle, so the
  // loop can end. Pending functions run first.
  void close();

 private:
  static void onAsync(uv_async_t* handle) noexcept;
  void drain();

  uv_async_t async_;
  // A sanctioned lock (docs/principles.md): the cross-thread hand-off itself.
  std::mutex mutex_;
  std::vector<std::function<void()>> queue_;  // guarded by mutex_
  bool closed_ = false;                       // guarded by mutex_
};

// "ECONNREFUSED: connection refused"
std::string uvErrorText(int code);

// Closes any handle and deletes its owner T (which embeds the handle and set
// handle->data = owner) once libuv is done with it.
template <typename T>
void closeAndDelete(uv_handle_t* handle, T* owner) {
  handle->data = owner;
  uv_close(handle, [](uv_handle_t* h) noexcept { delete static_cast<T*>(h->data); });
}

}  // namespace tlsedge::net
