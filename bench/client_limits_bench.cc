// Per-client limits (proxy::ClientTable): what a request and a connection
// cost with limits.per_client on.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>

#include <vector>

#include "proxy/client_limits.h"

namespace tlsedge::proxy {
namespace {

conf::ClientLimits allOn() {
  conf::ClientLimits l;
  l.maxConnections = 1000000;
  l.maxHandshakes = 1000000;
  l.connectionsPerSecond = 1000000;
  l.requestsPerSecond = 1000000;
  l.tableSize = 16384;
  return l;
}

// `n` distinct IPv4 clients, 10.x.y.z.
std::vector<sockaddr_in> clients(int n) {
  std::vector<sockaddr_in> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)].sin_family = AF_INET;
    out[static_cast<size_t>(i)].sin_addr.s_addr = htonl(0x0A000000u + static_cast<uint32_t>(i));
  }
  return out;
}

const sockaddr* at(const std::vector<sockaddr_in>& v, size_t i) {
  return reinterpret_cast<const sockaddr*>(&v[i % v.size()]);
}

// A request on an admitted connection: one bucket update, no lookup.
void BM_ClientRequest(benchmark::State& state) {
  const conf::ClientLimits limits = allOn();
  ClientTable table;
  const auto c = clients(1);
  ClientTable::Entry* entry = table.admit(limits, at(c, 0), false, 0).entry;
  uint64_t now = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ClientTable::takeRequest(limits, entry, ++now / 64));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClientRequest);

// A connection: admit (lookup, checks, connection bucket) and close, over
// `range(0)` clients that each keep one other connection open (so none is
// forgotten between visits).
void BM_ClientConnection(benchmark::State& state) {
  const conf::ClientLimits limits = allOn();
  ClientTable table;
  const auto c = clients(static_cast<int>(state.range(0)));
  for (size_t i = 0; i < c.size(); ++i) table.admit(limits, at(c, i), false, 0);
  size_t i = 0;
  uint64_t now = 0;
  for (auto _ : state) {
    auto a = table.admit(limits, at(c, i++), true, ++now / 64);
    ClientTable::handshakeDone(a.entry);
    table.closed(limits, a.entry, now / 64);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClientConnection)->Arg(1)->Arg(1000)->Arg(100000);

// Every connection from a new address, past table_size: each one makes an
// entry and forgets the least recently seen (an address-spraying flood).
void BM_ClientConnectionSpray(benchmark::State& state) {
  const conf::ClientLimits limits = allOn();
  ClientTable table;
  const auto c = clients(1 << 20);
  size_t i = 0;
  for (auto _ : state) {
    auto a = table.admit(limits, at(c, i++), false, 0);
    table.closed(limits, a.entry, 0);
  }
  state.counters["tracked"] = static_cast<double>(table.size());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClientConnectionSpray);

}  // namespace
}  // namespace tlsedge::proxy
