// CertificateStore::loadAll: loading many store entries on a bounded set of
// threads (the daemon's start: a 100k-certificate store is ~7 s of parsing
// and signature checks on one core).
//
// Thread: called from the control loop (or the CLI); the threads it starts
// run parseCredentials on distinct entries and touch nothing shared but the
// CRYPTO_BUFFER_POOL (locked by BoringSSL) and their own result slots; all
// are joined before it returns. Workers are never involved.
#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include "base/cpus.h"
#include "certstore/store.h"

namespace tlsedge::certstore {

std::vector<Result<CredentialsPtr>> CertificateStore::loadAll(const std::vector<std::string>& names,
                                                              CRYPTO_BUFFER_POOL* pool, time_t now,
                                                              size_t threads) const {
  if (threads == 0) threads = usableCpus();
  threads = std::min({threads, kMaxLoadThreads, names.size()});
  if (names.size() < kParallelLoadMinimum) threads = 1;

  std::vector<std::optional<Result<CredentialsPtr>>> slots(names.size());
  std::atomic<size_t> next{0};
  auto run = [&] {
    // Small batches: few atomic operations, and an even share at the end.
    constexpr size_t kBatch = 16;
    for (;;) {
      const size_t from = next.fetch_add(kBatch, std::memory_order_relaxed);
      if (from >= names.size()) return;
      const size_t to = std::min(from + kBatch, names.size());
      for (size_t i = from; i < to; ++i)
        slots[i].emplace(load(names[i], pool, now, Verify::kStored));
    }
  };
  std::vector<std::thread> helpers;
  helpers.reserve(threads - 1);
  for (size_t t = 1; t < threads; ++t) helpers.emplace_back(run);
  run();
  for (std::thread& helper : helpers) helper.join();

  std::vector<Result<CredentialsPtr>> out;
  out.reserve(names.size());
  for (auto& slot : slots) out.push_back(std::move(*slot));
  return out;
}

}  // namespace tlsedge::certstore
