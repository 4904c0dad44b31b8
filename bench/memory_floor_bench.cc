// The machine's floor for an SNI lookup in a big store: one dependent random
// 64-byte read in a buffer the size of the host index at 1M certificates
// (256 MiB: 4M slots of 64 bytes), on transparent huge pages as the index is.
// A lookup at 1M makes one such read (its home slot) plus cached ones, so
// BM_SniExactChained/1000000 minus this is what the index itself costs
// (docs/benchmarks.md).
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace {

void BM_MemoryFloorDependentRead(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0)) << 20;
  const size_t lines = bytes / 64;
  constexpr size_t kHuge = size_t{2} << 20;
  void* raw =
      ::mmap(nullptr, bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  char* base =
      reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + kHuge - 1) & ~(kHuge - 1));
  ::madvise(base, bytes, MADV_HUGEPAGE);
  // One random cycle through every line: each read's address is the
  // previous read's value, so no two reads overlap.
  std::vector<uint32_t> order(lines);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(1));
  for (size_t i = 0; i < lines; ++i) {
    *reinterpret_cast<uint64_t*>(base + size_t{order[i]} * 64) =
        uint64_t{order[(i + 1) % lines]} * 64;
  }
  uint64_t at = 0;
  for (auto _ : state) {
    at = *reinterpret_cast<const uint64_t*>(base + at);
    benchmark::DoNotOptimize(at);
  }
  state.SetItemsProcessed(state.iterations());
  ::munmap(raw, bytes + kHuge);
}
BENCHMARK(BM_MemoryFloorDependentRead)->Arg(1)->Arg(32)->Arg(256);

}  // namespace
