// Certificate snapshots: SNI lookup and one-certificate updates at 1k, 100k
// and 1M certificates; PEM parsing of one certificate (see bench/README.md).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "certstore/credentials.h"
#include "certstore/files.h"
#include "certstore/selector.h"
#include "certstore/self_signed.h"

namespace tlsedge::certstore {
namespace {

constexpr size_t kProbeNames = 1 << 16;  // cycled through, beyond the caches at 1M

CredentialsPtr fake(const std::string& name) {
  auto c = std::make_shared<Credentials>();
  c->name = name;
  return c;
}

// N certificates "cI", each bound to "siteI.example" and "*.siteI.example",
// plus a default. Built once per size (1M takes seconds).
const std::shared_ptr<const Selector>& store(size_t n) {
  static std::map<size_t, std::shared_ptr<const Selector>> stores;
  auto& s = stores[n];
  if (!s) {
    Selector::Input input;
    input.certificates.reserve(n + 1);
    input.hosts.reserve(2 * n);
    for (size_t i = 0; i < n; ++i) {
      const std::string name = "c" + std::to_string(i);
      input.certificates.push_back(fake(name));
      input.hosts.emplace_back("site" + std::to_string(i) + ".example", name);
      input.hosts.emplace_back("*.site" + std::to_string(i) + ".example", name);
    }
    input.certificates.push_back(fake("default"));
    input.defaultName = "default";
    s = Selector::make(std::move(input));
  }
  return s;
}

// Pseudo-random indexes in [0, n), the same every run.
std::vector<size_t> probes(size_t n) {
  std::vector<size_t> out(kProbeNames);
  uint64_t x = 88172645463325252ull;
  for (auto& v : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v = static_cast<size_t>(x % n);
  }
  return out;
}

void lookup(benchmark::State& state, const char* prefix, Selector::Outcome expected) {
  const size_t n = static_cast<size_t>(state.range(0));
  const Selector& s = *store(n);
  std::vector<std::string> names;
  for (size_t i : probes(n)) names.push_back(prefix + std::to_string(i) + ".example");
  size_t i = 0;
  for (auto _ : state) {
    auto choice = s.select(names[i++ & (kProbeNames - 1)]);
    benchmark::DoNotOptimize(choice);
  }
  if (s.select(names[0]).outcome != expected) state.SkipWithError("unexpected outcome");
  state.SetItemsProcessed(state.iterations());
}

void BM_SniExact(benchmark::State& state) { lookup(state, "site", Selector::Outcome::kExact); }
void BM_SniWildcard(benchmark::State& state) {
  lookup(state, "img.site", Selector::Outcome::kWildcard);
}
void BM_SniMiss(benchmark::State& state) { lookup(state, "nosuch", Selector::Outcome::kDefault); }
BENCHMARK(BM_SniExact)->Arg(1000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_SniWildcard)->Arg(1000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_SniMiss)->Arg(1000)->Arg(100000)->Arg(1000000);

// Replacing one certificate (two host bindings and its name entry): the new
// snapshot, as the hot swap publishes it. Freeing the previous snapshot's
// path copies is included (the loop drops each new snapshot).
void BM_SnapshotUpdateOne(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const auto& s = store(n);
  std::vector<CredentialsPtr> replacements;
  for (size_t i : probes(n)) {
    replacements.push_back(fake("c" + std::to_string(i)));
    if (replacements.size() == 1024) break;
  }
  size_t i = 0;
  size_t copied = 0;
  for (auto _ : state) {
    auto next = s->withCertificate(replacements[i++ & 1023], &copied);
    benchmark::DoNotOptimize(next);
  }
  state.counters["bytes_copied"] =
      benchmark::Counter(static_cast<double>(copied) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_SnapshotUpdateOne)->Arg(1000)->Arg(100000)->Arg(1000000);

// Parsing and validating one ECDSA P-256 leaf and its key from PEM (what a
// hot swap does per certificate, file reads excluded).
void BM_PemLoadOne(benchmark::State& state) {
  char dir[] = "/tmp/tlsedge-bench-XXXXXX";
  if (::mkdtemp(dir) == nullptr) {
    state.SkipWithError("mkdtemp");
    return;
  }
  const std::string cert = std::string(dir) + "/cert.pem";
  const std::string key = std::string(dir) + "/key.pem";
  if (!generateSelfSigned(cert, key, {"bench.example", "www.bench.example"}, 30).ok()) {
    state.SkipWithError("generateSelfSigned");
    return;
  }
  auto certPem = readFile(cert);
  auto keyPem = readFile(key);
  ::unlink(cert.c_str());
  ::unlink(key.c_str());
  ::rmdir(dir);
  if (!certPem.ok() || !keyPem.ok()) {
    state.SkipWithError("readFile");
    return;
  }
  const time_t now = ::time(nullptr);
  for (auto _ : state) {
    auto c = parseCredentials("bench", *certPem, *keyPem, sharedBufferPool(), now);
    if (!c.ok()) state.SkipWithError(c.error().message.c_str());
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PemLoadOne);

}  // namespace
}  // namespace tlsedge::certstore
