#include "base/cpus.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <thread>

namespace tlsedge {

unsigned usableCpus() {
  // A fixed cpu_set_t holds 1,024 CPUs; larger machines need the dynamic
  // set, sized up until the kernel accepts it (EINVAL: too small).
  for (int size = CPU_SETSIZE; size <= (1 << 16); size *= 2) {
    cpu_set_t* set = CPU_ALLOC(size);
    if (set == nullptr) break;
    const size_t bytes = CPU_ALLOC_SIZE(size);
    const int rc = sched_getaffinity(0, bytes, set);
    const int count = rc == 0 ? CPU_COUNT_S(bytes, set) : 0;
    CPU_FREE(set);
    if (rc == 0) return static_cast<unsigned>(std::max(1, count));
    if (errno != EINVAL) break;
  }
  return std::max(1U, std::thread::hardware_concurrency());
}

}  // namespace tlsedge
