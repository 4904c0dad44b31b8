// TlsStats: what the handshake path counts (the certificate selection's
// outcome), kept by the worker that runs the handshake. The worker's
// WorkerStats (proxy/worker_stats.h) extends it with everything else it
// counts; the handshake path sees only this part.
//
// Thread: the worker's own loop only (plain integers, as WorkerStats).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tlsedge::tls {

struct TlsStats {
  // Indexes of sniLookups.
  enum SniOutcome : size_t { kExact, kWildcard, kSiteFallback, kDefault, kMiss, kSniOutcomes };

  std::array<uint64_t, kSniOutcomes> sniLookups{};  // certificate selections by outcome
};

}  // namespace tlsedge::tls
