// Route lookup: Router::findSite + findRoute over 1k sites.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/router.h"

namespace tlsedge::proxy {
namespace {

constexpr int kSites = 1000;

// 1k sites: even ones with two exact hosts, odd ones with an exact host and a
// one-label wildcard; each with four routes.
std::unique_ptr<conf::Config> makeConfig() {
  auto config = std::make_unique<conf::Config>();
  config->sites.reserve(kSites);
  for (int i = 0; i < kSites; ++i) {
    conf::Site site;
    site.name = "site-" + std::to_string(i);
    const std::string domain = "customer-" + std::to_string(i) + ".example.com";
    site.hosts.push_back(domain);
    site.hosts.push_back(i % 2 == 0 ? "www." + domain : "*." + domain);
    for (const char* prefix : {"/", "/api/", "/api/v2/", "/static/"}) {
      conf::Route route;
      route.pathPrefix = prefix;
      route.upstream = site.name + "-origin";
      site.routes.push_back(std::move(route));
    }
    config->sites.push_back(std::move(site));
  }
  return config;
}

struct Fixture {
  Fixture() : config(makeConfig()), router(*config) {}
  std::unique_ptr<conf::Config> config;
  Router router;
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Hosts as they arrive in Host headers (some with ports or upper case).
std::vector<std::string> hosts(const char* prefix, int stride, const char* suffix) {
  std::vector<std::string> out;
  for (int i = 0; i < kSites; i += stride) {
    out.push_back(std::string(prefix) + "customer-" + std::to_string(i) + ".example.com" + suffix);
  }
  return out;
}

void runLookups(benchmark::State& state, const std::vector<std::string>& hostList,
                const char* target, bool expectHit) {
  const Router& router = fixture().router;
  size_t i = 0;
  for (auto _ : state) {
    const std::string& host = hostList[i];
    i = (i + 1 == hostList.size()) ? 0 : i + 1;
    const conf::Site* site = router.findSite(host);
    if ((site != nullptr) != expectHit) {
      state.SkipWithError("unexpected lookup result");
      break;
    }
    if (site != nullptr) benchmark::DoNotOptimize(router.findRoute(*site, target));
    benchmark::DoNotOptimize(site);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RouteExact(benchmark::State& state) {
  static const auto list = hosts("www.", 2, ":443");
  runLookups(state, list, "/api/v2/orders?id=42", true);
}
BENCHMARK(BM_RouteExact);

void BM_RouteExactMixedCase(benchmark::State& state) {
  static const auto list = hosts("WWW.", 2, "");
  runLookups(state, list, "/index.html", true);
}
BENCHMARK(BM_RouteExactMixedCase);

void BM_RouteWildcard(benchmark::State& state) {
  // Odd sites carry "*.customer-N.example.com".
  std::vector<std::string> list;
  for (int i = 1; i < kSites; i += 2) {
    list.push_back("img.customer-" + std::to_string(i) + ".example.com");
  }
  runLookups(state, list, "/static/app.js", true);
}
BENCHMARK(BM_RouteWildcard);

void BM_RouteMiss(benchmark::State& state) {
  static const auto list = hosts("a.b.", 1, "");  // two labels: no wildcard covers it
  runLookups(state, list, "/", false);
}
BENCHMARK(BM_RouteMiss);

}  // namespace
}  // namespace tlsedge::proxy
