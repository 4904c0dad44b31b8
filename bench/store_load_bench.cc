// tlsedge_store_load_bench: loading a state directory of N certificates the
// way the daemon does at start, timed, with resident memory per certificate
// (see bench/README.md and docs/benchmarks.md).
//
//   tlsedge_store_load_bench [--count N] [--state DIR] [--threads T]
//
// The store is generated once (ECDSA P-256 leaves under one intermediate,
// like an ACME store: <DIR>/certs/cI/{fullchain.pem,privkey.pem,meta.json})
// and reused while <DIR>/generated says N. Generation runs in a child
// process so that its allocations do not hide in the parent's heap.
//
// Measured in one process, in this order:
//   1. the config: one site per certificate, hosts siteI.example and
//      *.siteI.example, tls.certificate cI (built before the baseline);
//   2. VmRSS before; what Selector::build(config) does, in its two timed
//      steps: resolveCertificates (list, read, parse and validate every
//      entry) then Selector::fromBindings (the snapshot indexes);
//      VmRSS after, with the resolved bindings already freed, as in the
//      daemon;
//   3. the same load again with CertificateStore::loadAll on --threads
//      threads (default 1), timed only: the per-core rate.
// Resident bytes per certificate = (VmRSS after - before - distinct DER
// bytes) / N: everything the daemon keeps per certificate (credentials,
// parsed key, strings, index entries, allocator overhead) except the DER.
// Single-threaded, one process per run; the page cache is warm (generation
// or an earlier run read the files).
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/pool.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "certstore/selector.h"
#include "certstore/shard_arena.h"
#include "certstore/store.h"

namespace tlsedge::certstore {
namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point from) {
  return std::chrono::duration<double>(Clock::now() - from).count();
}

// CPU seconds of the whole process (all threads): on a shared machine the
// wall time depends on the neighbours, this much less.
double cpuSeconds() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// A "Field:   N kB" line of a /proc/self file, in bytes (0 if absent).
long procBytes(const char* file, const std::string& field) {
  std::ifstream status(file);
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + field.size()) * 1024;
  }
  return 0;
}

long vmRssBytes() { return procBytes("/proc/self/status", "VmRSS:"); }

bssl::UniquePtr<EVP_PKEY> newP256Key() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  if (!ec || !key || !EC_KEY_generate_key(ec.get()) ||
      !EVP_PKEY_assign_EC_KEY(key.get(), ec.release()))
    return nullptr;
  return key;
}

// A certificate for `cn` (and `dns` in subjectAltName for a leaf) signed by
// `issuerKey` under `issuer`'s subject (null: self-signed), valid one year
// from a day ago.
bssl::UniquePtr<X509> newCert(const std::string& cn, const std::vector<std::string>& dns, bool ca,
                              EVP_PKEY* key, X509* issuer, EVP_PKEY* issuerKey, long serial) {
  bssl::UniquePtr<X509> cert(X509_new());
  bssl::UniquePtr<X509_NAME> name(X509_NAME_new());
  X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const uint8_t*>(cn.data()),
                             static_cast<int>(cn.size()), -1, 0);
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), static_cast<uint64_t>(serial));
  X509_set_subject_name(cert.get(), name.get());
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name.get());
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -86400);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 86400);
  X509_set_pubkey(cert.get(), key);
  bssl::UniquePtr<BASIC_CONSTRAINTS> basic(BASIC_CONSTRAINTS_new());
  basic->ca = ca ? 0xff : 0;
  X509_add1_ext_i2d(cert.get(), NID_basic_constraints, basic.get(), 1, X509V3_ADD_DEFAULT);
  if (!dns.empty()) {
    bssl::UniquePtr<GENERAL_NAMES> san(sk_GENERAL_NAME_new_null());
    for (const std::string& host : dns) {
      GENERAL_NAME* entry = GENERAL_NAME_new();
      ASN1_IA5STRING* value = ASN1_IA5STRING_new();
      ASN1_STRING_set(value, host.data(), static_cast<int>(host.size()));
      GENERAL_NAME_set0_value(entry, GEN_DNS, value);
      sk_GENERAL_NAME_push(san.get(), entry);
    }
    X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, san.get(), 0, X509V3_ADD_DEFAULT);
  }
  if (!X509_sign(cert.get(), issuerKey, EVP_sha256())) return nullptr;
  return cert;
}

std::string pemOf(X509* cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string pemOf(EVP_PKEY* key) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

bool writeText(const std::string& path, const std::string& text, mode_t mode) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ::chmod(path.c_str(), mode);
  return std::fclose(f) == 0 && ok;
}

// Writes N entries: a bench cache, not a store the daemon manages, so plain
// writes (no fsync: 300k fsyncs would take minutes and measure nothing).
int generate(const std::string& state, size_t count) {
  const std::string certs = state + "/certs";
  ::mkdir(state.c_str(), 0700);
  ::mkdir(certs.c_str(), 0700);
  auto rootKey = newP256Key();
  auto root = newCert("Bench Root", {}, true, rootKey.get(), nullptr, rootKey.get(), 1);
  auto interKey = newP256Key();
  auto inter =
      newCert("Bench Intermediate", {}, true, interKey.get(), root.get(), rootKey.get(), 2);
  const std::string interPem = pemOf(inter.get());
  const std::string meta =
      "{\"source\":\"acme\",\"created\":\"2026-11-23T00:00:00Z\",\"updated\":\"2026-11-23T00:00:"
      "00Z\"}\n";
  for (size_t i = 0; i < count; ++i) {
    const std::string site = "site" + std::to_string(i) + ".example";
    auto key = newP256Key();
    auto leaf = newCert(site, {site, "*." + site}, false, key.get(), inter.get(), interKey.get(),
                        static_cast<long>(1000 + i));
    if (!key || !leaf) return 1;
    const std::string dir = certs + "/c" + std::to_string(i);
    ::mkdir(dir.c_str(), 0700);
    if (!writeText(dir + "/fullchain.pem", pemOf(leaf.get()) + interPem, 0644) ||
        !writeText(dir + "/privkey.pem", pemOf(key.get()), 0600) ||
        !writeText(dir + "/meta.json", meta, 0644)) {
      std::perror(dir.c_str());
      return 1;
    }
    if ((i + 1) % 10000 == 0) std::fprintf(stderr, "generated %zu\n", i + 1);
  }
  return writeText(state + "/generated", std::to_string(count) + "\n", 0644) ? 0 : 1;
}

bool generated(const std::string& state, size_t count) {
  std::ifstream in(state + "/generated");
  size_t n = 0;
  return static_cast<bool>(in >> n) && n == count;
}

}  // namespace
}  // namespace tlsedge::certstore

int main(int argc, char** argv) {
  using namespace tlsedge::certstore;
  size_t count = 100000;
  size_t threads = 1;
  std::string state;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--count") {
      count = std::strtoul(argv[i + 1], nullptr, 10);
    } else if (flag == "--state") {
      state = argv[i + 1];
    } else if (flag == "--threads") {
      threads = std::strtoul(argv[i + 1], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: %s [--count N] [--state DIR] [--threads T]\n", argv[0]);
      return 2;
    }
  }
  if (state.empty()) state = std::string(TLSEDGE_BENCH_DIR) + "/store-" + std::to_string(count);

  if (!generated(state, count)) {
    std::fprintf(stderr, "generating %zu certificates in %s (once)\n", count, state.c_str());
    const auto start = Clock::now();
    const pid_t child = ::fork();
    if (child == 0) _exit(generate(state, count));
    int status = 0;
    if (child < 0 || ::waitpid(child, &status, 0) != child || status != 0) {
      std::fprintf(stderr, "generation failed\n");
      return 1;
    }
    std::fprintf(stderr, "generated in %.1f s\n", seconds(start));
  }

  tlsedge::conf::Config config;
  config.sourceName = "<bench>";
  config.stateDir = state;
  config.sites.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    tlsedge::conf::Site site;
    site.name = "s" + std::to_string(i);
    const std::string host = "site" + std::to_string(i) + ".example";
    site.hosts = {host, "*." + host};
    site.certificates = {"c" + std::to_string(i)};
    config.sites.push_back(std::move(site));
  }
  const time_t now = ::time(nullptr);

  // Selector::build(config, now), in its two steps, timed apart.
  const long rssBefore = vmRssBytes();
  auto start = Clock::now();
  const double cpuStart = cpuSeconds();
  std::shared_ptr<const Selector> built;
  double resolveSeconds = 0;
  {
    ResolvedCertificates resolved = resolveCertificates(config, now, sharedBufferPool());
    resolveSeconds = seconds(start);
    if (!resolved.errors.empty()) {
      std::fprintf(stderr, "%s\n", resolved.errors[0].c_str());
      return 1;
    }
    built = Selector::fromBindings(resolved, false);
  }
  const double buildSeconds = seconds(start);
  const double buildCpu = cpuSeconds() - cpuStart;
  const long rssAfter = vmRssBytes();
  const std::shared_ptr<const Selector>* selector = &built;
  if ((*selector)->certificateCount() != count) {
    std::fprintf(stderr, "loaded %zu certificates, expected %zu\n", (*selector)->certificateCount(),
                 count);
    return 1;
  }
  std::unordered_set<const CRYPTO_BUFFER*> distinct;
  size_t derBytes = 0;
  (*selector)->nameIndex().forEach([&](const std::string&, const Selector::NamedPtr& named) {
    for (const auto& der : named->credentials->chain) {
      if (distinct.insert(der.get()).second) derBytes += CRYPTO_BUFFER_len(der.get());
    }
  });
  const double perCert =
      (static_cast<double>(rssAfter - rssBefore) - static_cast<double>(derBytes)) /
      static_cast<double>(count);
  std::printf("certificates            %zu\n", count);
  std::printf("Selector::build         %.2f s  %.0f certificates/s\n", buildSeconds,
              static_cast<double>(count) / buildSeconds);
  std::printf("  CPU time              %.2f s  %.1f us per certificate (all threads)\n", buildCpu,
              buildCpu * 1e6 / static_cast<double>(count));
  std::printf("  resolveCertificates   %.2f s  (list, read, parse: loadAll on all CPUs)\n",
              resolveSeconds);
  std::printf("  fromBindings          %.2f s  (the snapshot indexes)\n",
              buildSeconds - resolveSeconds);
  std::printf("VmRSS delta             %.1f MiB  (distinct DER %.1f MiB)\n",
              static_cast<double>(rssAfter - rssBefore) / 1048576.0,
              static_cast<double>(derBytes) / 1048576.0);
  std::printf("resident beyond DER     %.0f bytes per certificate\n", perCert);
  const ShardArena::Stats arena = ShardArena::instance().stats();
  std::printf(
      "index shard arena       %.1f MiB mapped, %.1f MiB in use, %.1f MiB free  "
      "(huge pages %s; AnonHugePages %.1f MiB)\n",
      static_cast<double>(arena.mappedBytes) / 1048576.0,
      static_cast<double>(arena.inUseBytes) / 1048576.0,
      static_cast<double>(arena.freeBytes) / 1048576.0, arena.hugePages ? "asked" : "no",
      static_cast<double>(procBytes("/proc/self/smaps_rollup", "AnonHugePages:")) / 1048576.0);

  const CertificateStore store = CertificateStore::forStateDir(state);
  auto names = store.names();
  if (!names.ok()) return 1;
  start = Clock::now();
  const double loadCpuStart = cpuSeconds();
  auto loaded = store.loadAll(*names, sharedBufferPool(), now, threads);
  const double loadSeconds = seconds(start);
  const double loadCpu = cpuSeconds() - loadCpuStart;
  size_t failed = 0;
  for (const auto& one : loaded) failed += one.ok() ? 0 : 1;
  std::printf("loadAll, %zu thread(s)   %.2f s  %.0f certificates/s  (%zu failed)\n", threads,
              loadSeconds, static_cast<double>(count) / loadSeconds, failed);
  std::printf("  CPU time              %.2f s  %.1f us per certificate\n", loadCpu,
              loadCpu * 1e6 / static_cast<double>(count));
  return failed == 0 ? 0 : 1;
}
