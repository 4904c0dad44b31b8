// OffloadLane: offload (net/offload.h), one job at a time, in the order
// asked. For reads and writes of one store whose order matters: a site's
// ACME state saved twice in a row must end as the second save, and a read
// asked after a write must see it.
//
// A job's `done` runs on the loop before the next job's `work` starts, so
// jobs of one lane never overlap and each sees what the earlier ones did
// (libuv's queue orders them). close(), or destroying the lane, drops the
// jobs not started and skips the `done` of the one running: its `work`
// still finishes on the pool, so it must own (capture by value) what it
// uses. `done` may destroy the lane.
//
// Thread: call on `loop`'s thread; `work` runs on a pool thread (nice 19).
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "net/offload.h"

namespace tlsedge::net {

class OffloadLane {
 public:
  explicit OffloadLane(uv_loop_t* loop) : loop_(loop) {}
  ~OffloadLane() { close(); }
  OffloadLane(const OffloadLane&) = delete;
  OffloadLane& operator=(const OffloadLane&) = delete;

  template <typename T>
  void run(std::function<T()> work, std::function<void(T)> done) {
    if (alive_ == nullptr) return;  // closed
    auto result = std::make_shared<std::optional<T>>();
    queue_.push_back({[work = std::move(work), result] { result->emplace(work()); },
                      [done = std::move(done), result] {
                        if (done && *result) done(std::move(**result));
                      }});
    if (!running_) startNext();
  }

  // Jobs asked for and not done yet (the running one included).
  size_t pending() const { return queue_.size() + (running_ ? 1 : 0); }

  void close() {
    queue_.clear();
    alive_.reset();
    running_ = false;
  }

 private:
  struct Job {
    std::function<void()> work;  // on the pool
    std::function<void()> done;  // on the loop
  };

  void startNext() {
    if (queue_.empty()) return;
    running_ = true;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    std::weak_ptr<OffloadLane*> weak = alive_;
    offload<bool>(
        loop_,
        [work = std::move(job.work)] {
          work();
          return true;
        },
        [weak, done = std::move(job.done)](bool) {
          OffloadLane* lane = nullptr;
          if (auto self = weak.lock()) lane = *self;
          if (lane == nullptr) return;  // closed meanwhile: the result is dropped
          lane->running_ = false;
          done();
          if (weak.expired()) return;              // `done` closed or destroyed the lane
          if (!lane->running_) lane->startNext();  // `done` may have started one
        });
  }

  uv_loop_t* loop_;
  std::deque<Job> queue_;
  bool running_ = false;
  std::shared_ptr<OffloadLane*> alive_ = std::make_shared<OffloadLane*>(this);
};

}  // namespace tlsedge::net
