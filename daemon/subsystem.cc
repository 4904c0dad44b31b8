#include "daemon/subsystem.h"

namespace tlsedge::daemon {

Status reconfigure(std::span<Subsystem* const> subsystems, const proxy::GenerationPtr& next) {
  for (size_t i = 0; i < subsystems.size(); ++i) {
    if (Status prepared = subsystems[i]->prepare(*next); !prepared.ok()) {
      while (i > 0) subsystems[--i]->abort();
      return prepared;
    }
  }
  for (Subsystem* subsystem : subsystems) subsystem->commit(next);
  return Ok{};
}

}  // namespace tlsedge::daemon
