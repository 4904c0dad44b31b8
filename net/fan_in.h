// FanIn: "run on every worker, then continue on the home loop when all
// have": a reload applied, a ticket key rotation, a drain, a metrics scrape.
//
//   auto round = net::FanIn::start(poster, workers.size(), [](size_t missing) {...});
//   for (auto& w : workers) w->doSomething([round] { round->arrive(); });
//
// arrive() may be called from any thread (a worker's); it posts to the
// home loop, where the arrival's `onHome` (to fold the worker's result) and,
// after the last one, `done` run. finishNow() ends the round early on the
// home loop (a deadline): `done` gets how many did not arrive, and later
// arrivals are dropped. A round whose poster is closed never completes
// (posts are dropped), which is what a stopping loop wants.
//
// Thread: start(), finishNow() and missing() on the home loop; arrive() on
// any thread. The counters are touched only on the home loop.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>

#include "net/loop.h"

namespace tlsedge::net {

class FanIn : public std::enable_shared_from_this<FanIn> {
 public:
  using Done = std::function<void(size_t missing)>;

  // Home loop. With `count` 0, `done(0)` runs before start() returns.
  static std::shared_ptr<FanIn> start(Poster& home, size_t count, Done done) {
    auto round = std::shared_ptr<FanIn>(new FanIn(home, count, std::move(done)));
    if (count == 0) round->complete();
    return round;
  }

  // Any thread, once per participant.
  void arrive(std::function<void()> onHome = {}) {
    home_.post([self = shared_from_this(), fn = std::move(onHome)] {
      if (self->done_ == nullptr) return;  // finished early: a late arrival
      if (fn) fn();
      if (--self->missing_ == 0) self->complete();
    });
  }

  // Home loop: completes now with whoever has not arrived counted as missing.
  void finishNow() {
    if (done_ != nullptr) complete();
  }

  size_t missing() const { return missing_; }

 private:
  FanIn(Poster& home, size_t count, Done done)
      : home_(home), missing_(count), done_(std::move(done)) {}

  void complete() {
    Done done = std::exchange(done_, nullptr);
    done(missing_);
  }

  Poster& home_;
  size_t missing_;
  Done done_;
};

}  // namespace tlsedge::net
