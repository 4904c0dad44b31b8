// What the metrics add to a request on a worker: LatencyHistogram::observe
// (a short bucket scan and two increments) and the clock read (uv_hrtime)
// at each end of a request or handshake. Figures: docs/benchmarks.md.
#include <uv.h>

#include <benchmark/benchmark.h>

#include <cstdint>

#include "proxy/latency_histogram.h"

namespace {

using tlsedge::proxy::LatencyHistogram;

// Latencies cycling through 64 values, most under 1 ms as on an edge
// answering from itself or a near origin, a few up to 3 s.
uint64_t latencyUs(uint64_t i) {
  static constexpr uint64_t kSpread[8] = {80, 150, 240, 400, 900, 3'000, 40'000, 3'000'000};
  return kSpread[(i * 7) % 8] + (i % 64);
}

void BM_HistogramObserve(benchmark::State& state) {
  LatencyHistogram h;
  uint64_t i = 0;
  for (auto _ : state) {
    h.observe(latencyUs(i++));
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramObserve);

void BM_ClockRead(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(uv_hrtime());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClockRead);

// A request's whole share with the access log off: the clock at the head,
// the clock at the end, one observation.
void BM_RequestTiming(benchmark::State& state) {
  LatencyHistogram h;
  for (auto _ : state) {
    const uint64_t start = uv_hrtime() / 1000;
    benchmark::ClobberMemory();
    h.observe(uv_hrtime() / 1000 - start);
    benchmark::DoNotOptimize(h);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RequestTiming);

}  // namespace
