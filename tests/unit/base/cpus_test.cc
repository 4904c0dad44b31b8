#include "base/cpus.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <thread>

namespace tlsedge {
namespace {

// Runs `fn` on a thread whose affinity is `set` (the mask usableCpus reads
// is the calling thread's), leaving the test's own thread untouched.
template <typename Fn>
void onThreadWithMask(const cpu_set_t& set, Fn fn) {
  std::thread t([&] {
    ASSERT_EQ(sched_setaffinity(0, sizeof(set), &set), 0);
    fn();
  });
  t.join();
}

TEST(CpusTest, CountsTheAffinityMaskNotTheMachine) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
  EXPECT_EQ(usableCpus(), static_cast<unsigned>(CPU_COUNT(&all)));

  // Pinned to the first CPU it may use: one, however many the machine has.
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &all)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  onThreadWithMask(one, [] { EXPECT_EQ(usableCpus(), 1U); });
}

}  // namespace
}  // namespace tlsedge
