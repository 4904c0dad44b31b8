// LatencyHistogram: a fixed-bucket latency histogram kept as plain integers
// by one worker (request and handshake latency), folded with add() at
// scrape time and rendered as a Prometheus histogram (daemon/metrics.cc).
//
// observe() is on the hot path: no atomic, no allocation, a short linear
// scan (most observations stop at the first bucket or two). Bounds are in
// microseconds; counts are per bucket (not cumulative), the last one is
// +Inf. docs/metrics.md lists the bounds; docs/benchmarks.md its cost.
//
// Thread: the owning worker's loop; copies are read on the control loop.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tlsedge::proxy {

struct LatencyHistogram {
  // Upper bounds (inclusive, Prometheus `le`) in microseconds: 250 us .. 10 s.
  static constexpr std::array<uint64_t, 15> kBoundsUs = {
      250,     500,     1'000,   2'500,     5'000,     10'000,    25'000,    50'000,
      100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000};

  std::array<uint64_t, kBoundsUs.size() + 1> counts{};  // [i]: in bucket i; back(): above all
  uint64_t sumUs = 0;

  void observe(uint64_t us) {
    size_t i = 0;
    while (i < kBoundsUs.size() && us > kBoundsUs[i]) ++i;
    ++counts[i];
    sumUs += us;
  }

  uint64_t total() const {
    uint64_t n = 0;
    for (uint64_t c : counts) n += c;
    return n;
  }

  void add(const LatencyHistogram& other) {
    for (size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
    sumUs += other.sumUs;
  }
};

}  // namespace tlsedge::proxy
