// offload: run a function on libuv's thread pool and hand its result back
// to the loop's thread; for work that must not stall a loop (reading the
// whole certificate store for an admin listing).
//
// `work` runs on a pool thread and must touch only what it owns or what is
// immutable (a ConfigPtr, a certificate snapshot); `done` runs on `loop`'s
// thread afterwards, also when the loop is closing (the pool finishes what
// it started). The pool has 4 threads unless UV_THREADPOOL_SIZE says
// otherwise; DNS lookups (uv_getaddrinfo) share it.
//
// A pool thread that runs offloaded work lowers its own CPU priority to
// nice 19 first, for good: the loops (control loop, workers) then win the
// CPU whenever they are runnable, which on a small machine is what keeps
// them responsive during seconds of background work (measured: /healthz
// latency during a 100k-certificate listing, docs/benchmarks.md). It stays
// lowered because raising it back needs CAP_SYS_NICE; the pool's other
// users wait on I/O, which nice does not slow.
//
// Thread: call on `loop`'s thread.
#pragma once

#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <functional>
#include <optional>
#include <utility>

namespace tlsedge::net {

// The calling thread's nice value to 19, once per thread.
inline void lowerThisThreadsPriority() noexcept {
  thread_local bool lowered = false;
  if (!lowered) {
    lowered = true;
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
  }
}

template <typename T>
void offload(uv_loop_t* loop, std::function<T()> work, std::function<void(T)> done) {
  struct Job {
    uv_work_t req;
    std::function<T()> work;
    std::function<void(T)> done;
    std::optional<T> result;
  };
  auto* job = new Job{{}, std::move(work), std::move(done), std::nullopt};
  job->req.data = job;
  uv_queue_work(
      loop, &job->req,
      [](uv_work_t* req) noexcept {
        auto* j = static_cast<Job*>(req->data);
        lowerThisThreadsPriority();
        j->result.emplace(j->work());
      },
      [](uv_work_t* req, int) noexcept {
        auto* j = static_cast<Job*>(req->data);
        if (j->result) j->done(std::move(*j->result));
        delete j;
      });
}

}  // namespace tlsedge::net
