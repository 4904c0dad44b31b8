// Subsystem: one part of the daemon that a reload reconfigures. A reload
// runs in two phases over the control loop's list of subsystems, in order:
// every prepare() checks the new generation and sets aside what its commit
// needs without changing what runs; only when every prepare() succeeded does
// every commit() switch, and commits cannot fail. A failed prepare() refuses
// the reload: the subsystems already prepared abort() (in reverse order) and
// the running configuration stays everywhere. What a reload cannot change
// (the number of workers, the admin socket) is a warning in commit(), not a
// refusal. HAProxy's certificate transactions (new, old, commit) and
// Pingora's services are the models.
//
// Thread: the control loop.
#pragma once

#include <span>

#include "base/result.h"
#include "proxy/generation.h"

namespace tlsedge::daemon {

class Subsystem {
 public:
  virtual ~Subsystem() = default;

  // Checks `next` and keeps what commit() needs. Changes nothing visible.
  virtual Status prepare(const proxy::Generation& next) {
    (void)next;
    return Ok{};
  }
  // Switches to `next`. Called only after every prepare() succeeded.
  virtual void commit(const proxy::GenerationPtr& next) = 0;
  // A later subsystem's prepare() failed: drop what prepare() kept.
  virtual void abort() {}
};

// The two phases over `subsystems`, in order. Returns the first prepare()
// error (nothing committed), else Ok (everything committed).
Status reconfigure(std::span<Subsystem* const> subsystems, const proxy::GenerationPtr& next);

}  // namespace tlsedge::daemon
