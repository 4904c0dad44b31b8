// Certificate snapshots: SNI lookup and one-certificate updates at 1k, 100k
// and 1M certificates; PEM parsing of one certificate (see bench/README.md;
// figures in docs/benchmarks.md).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "certstore/credentials.h"
#include "certstore/files.h"
#include "certstore/selector.h"
#include "certstore/self_signed.h"
#include "certstore/shard_arena.h"
#include "certstore/store_bindings.h"

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
// `hugePages` false: the shards on 4 KiB pages (ShardArena::setHugePages),
// to compare in one process.
const std::shared_ptr<const Selector>& store(size_t n, bool hugePages = true) {
  static std::map<std::pair<size_t, bool>, std::shared_ptr<const Selector>> stores;
  auto& s = stores[{n, hugePages}];
  if (!s) {
    ShardArena::instance().setHugePages(hugePages);
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
    ShardArena::instance().setHugePages(true);
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

// What select() did before it overlapped its two probes: lower-case, the
// exact probe, then the wildcard key built in place and probed (no site
// fallbacks in these stores). For the A/B rows only.
Selector::Outcome sequentialSelect(const Selector& s, std::string_view sni) {
  char buffer[253];
  if (sni.empty() || sni.size() > sizeof buffer) return Selector::Outcome::kDefault;
  for (size_t i = 0; i < sni.size(); ++i) {
    const char c = sni[i];
    buffer[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  const std::string_view host(buffer, sni.size());
  if (s.hostIndex().find(host) != nullptr) return Selector::Outcome::kExact;
  const size_t dot = host.find('.');
  if (dot != std::string_view::npos && dot > 0 && dot + 1 < host.size()) {
    buffer[dot - 1] = '*';
    if (s.hostIndex().find(std::string_view(buffer + dot - 1, host.size() - dot + 1)) != nullptr) {
      return Selector::Outcome::kWildcard;
    }
  }
  return Selector::Outcome::kDefault;
}

// kChained: each lookup's name depends on the previous result, so lookups
// cannot overlap: the latency of one, not the throughput of many.
enum class Variant { kSelect, kSequential, kSmallPages, kChained };

void lookup(benchmark::State& state, const char* prefix, Selector::Outcome expected,
            Variant variant = Variant::kSelect) {
  const size_t n = static_cast<size_t>(state.range(0));
  const Selector& s = *store(n, variant != Variant::kSmallPages);
  // The names side by side in one buffer, as an SNI sits in its ClientHello
  // (hot): separate std::strings longer than 15 characters would be heap
  // blocks scattered over the big stores' heap, one more cache and TLB miss
  // per lookup that has nothing to do with the index.
  std::string text;
  std::vector<std::pair<size_t, size_t>> at;
  for (size_t i : probes(n)) {
    const std::string name = prefix + std::to_string(i) + ".example";
    at.emplace_back(text.size(), name.size());
    text += name;
  }
  std::vector<std::string_view> names;
  for (auto [from, length] : at) names.emplace_back(text.data() + from, length);
  size_t i = 0;
  if (variant == Variant::kSequential) {
    for (auto _ : state) {
      auto outcome = sequentialSelect(s, names[i++ & (kProbeNames - 1)]);
      benchmark::DoNotOptimize(outcome);
    }
    if (sequentialSelect(s, names[0]) != expected) state.SkipWithError("unexpected outcome");
  } else if (variant == Variant::kChained) {
    for (auto _ : state) {
      auto choice = s.select(names[i & (kProbeNames - 1)]);
      // User-space pointers have bit 63 clear: always i + 1, but only once
      // the lookup has returned.
      i += 1 + (reinterpret_cast<uintptr_t>(choice.credentials) >> 63);
    }
    if (s.select(names[0]).outcome != expected) state.SkipWithError("unexpected outcome");
  } else {
    for (auto _ : state) {
      auto choice = s.select(names[i++ & (kProbeNames - 1)]);
      benchmark::DoNotOptimize(choice);
    }
    if (s.select(names[0]).outcome != expected) state.SkipWithError("unexpected outcome");
  }
  state.SetItemsProcessed(state.iterations());
}

constexpr auto kExact = Selector::Outcome::kExact;
constexpr auto kWildcard = Selector::Outcome::kWildcard;
constexpr auto kMiss = Selector::Outcome::kDefault;

void BM_SniExact(benchmark::State& state) { lookup(state, "site", kExact); }
void BM_SniWildcard(benchmark::State& state) { lookup(state, "img.site", kWildcard); }
void BM_SniMiss(benchmark::State& state) { lookup(state, "nosuch", kMiss); }
BENCHMARK(BM_SniExact)->Arg(1000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_SniWildcard)->Arg(1000)->Arg(100000)->Arg(1000000);
BENCHMARK(BM_SniMiss)->Arg(1000)->Arg(100000)->Arg(1000000);

// A/B rows at 1M (docs/benchmarks.md): the two probes one after the other
// (no prefetch), and the shards on 4 KiB pages.
void BM_SniWildcardSequential(benchmark::State& state) {
  lookup(state, "img.site", kWildcard, Variant::kSequential);
}
void BM_SniMissSequential(benchmark::State& state) {
  lookup(state, "nosuch", kMiss, Variant::kSequential);
}
void BM_SniExactSmallPages(benchmark::State& state) {
  lookup(state, "site", kExact, Variant::kSmallPages);
}
void BM_SniWildcardSmallPages(benchmark::State& state) {
  lookup(state, "img.site", kWildcard, Variant::kSmallPages);
}
void BM_SniMissSmallPages(benchmark::State& state) {
  lookup(state, "nosuch", kMiss, Variant::kSmallPages);
}
void BM_SniExactChained(benchmark::State& state) {
  lookup(state, "site", kExact, Variant::kChained);
}
void BM_SniWildcardChained(benchmark::State& state) {
  lookup(state, "img.site", kWildcard, Variant::kChained);
}
void BM_SniMissChained(benchmark::State& state) {
  lookup(state, "nosuch", kMiss, Variant::kChained);
}
BENCHMARK(BM_SniExactChained)->Arg(1000)->Arg(1000000);
BENCHMARK(BM_SniWildcardChained)->Arg(1000000);
BENCHMARK(BM_SniMissChained)->Arg(1000000);
BENCHMARK(BM_SniWildcardSequential)->Arg(1000000);
BENCHMARK(BM_SniMissSequential)->Arg(1000000);
BENCHMARK(BM_SniExactSmallPages)->Arg(1000000);
BENCHMARK(BM_SniWildcardSmallPages)->Arg(1000000);
BENCHMARK(BM_SniMissSmallPages)->Arg(1000000);

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
// hot swap does per certificate, file reads excluded): in full (uploads,
// config files), or as a store load re-checks what add() wrote
// (Verify::kStored: no signature verification).
void pemLoadOne(benchmark::State& state, Verify verify) {
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
    auto c = parseCredentials("bench", *certPem, *keyPem, sharedBufferPool(), now, "chain", "key",
                              verify);
    if (!c.ok()) state.SkipWithError(c.error().message.c_str());
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_PemLoadOne(benchmark::State& state) { pemLoadOne(state, Verify::kFull); }
void BM_PemLoadOneStored(benchmark::State& state) { pemLoadOne(state, Verify::kStored); }
BENCHMARK(BM_PemLoadOne);
BENCHMARK(BM_PemLoadOneStored);

// One store entry replaced under a running daemon (StoreBindings::apply, what
// the watcher does after loading it): N store certificates "sI" each covering
// the unbound site host "storeI.example" (N sites of one host). The entry is
// replaced by a newer certificate for the same host: withCertificate + the
// host's newest cover recomputed. Items = entry changes.
void BM_StoreEntryApply(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const time_t now = ::time(nullptr);
  auto cover = [now](size_t i, time_t issued) {
    auto c = std::make_shared<Credentials>();
    c->name = "s" + std::to_string(i);
    c->dnsNames = {"store" + std::to_string(i) + ".example"};
    c->notBefore = issued;
    c->notAfter = now + 86400;
    return c;
  };
  auto config = std::make_shared<conf::Config>();
  config->sites.resize(n);
  Selector::Input input;
  for (size_t i = 0; i < n; ++i) {
    config->sites[i].name = "site" + std::to_string(i);
    config->sites[i].hosts = {"store" + std::to_string(i) + ".example"};
    input.certificates.push_back(cover(i, now - 3600));
    input.hosts.emplace_back(config->sites[i].hosts[0], "s" + std::to_string(i));
  }
  std::shared_ptr<const Selector> current = Selector::make(std::move(input));
  StoreBindings bindings = StoreBindings::build(config, *current);
  const std::vector<size_t> which = probes(n);
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = which[i++ & (kProbeNames - 1)];
    auto applied = bindings.apply(current, "s" + std::to_string(k), cover(k, now - 1800), now);
    if (!applied.ok() || applied->hosts.size() != 1) {
      state.SkipWithError("unexpected apply result");
      break;
    }
    current = std::move(applied->snapshot);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_StoreEntryApply)->Arg(1000)->Arg(100000)->Arg(1000000);

}  // namespace
}  // namespace tlsedge::certstore
