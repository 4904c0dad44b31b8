// net::parseProxyHeader over arbitrary bytes (tests/fuzz/README.md).
// Invariants: a header never claims more bytes than it was given, nor more
// than the spec's bounds; it starts with a signature; its addresses are the
// ones in the bytes (v2: the address block, v1: the IPv4 text on the line);
// a prefix of a complete header is never refused; and what buildProxyV2
// makes of the addresses parses back to the same addresses.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "net/proxy_header.h"

namespace {

using tlsedge::net::ProxyParse;
using State = ProxyParse::State;

bool sameAddress(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(&a);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const auto* x = reinterpret_cast<const sockaddr_in6*>(&a);
  const auto* y = reinterpret_cast<const sockaddr_in6*>(&b);
  return x->sin6_port == y->sin6_port && std::memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

// The v2 address block holds `address` at `offset` and its port at `portAt`.
bool inV2Block(std::string_view data, const sockaddr_storage& address, size_t offset,
               size_t portAt) {
  uint16_t port = 0;
  const void* ip = nullptr;
  size_t size = 4;
  if (address.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&address);
    port = a->sin_port;
    ip = &a->sin_addr;
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&address);
    port = a->sin6_port;
    ip = &a->sin6_addr;
    size = 16;
  }
  return std::memcmp(data.data() + offset, ip, size) == 0 &&
         std::memcmp(data.data() + portAt, &port, 2) == 0;
}

void checkAddresses(std::string_view data, const ProxyParse& p) {
  const auto& h = p.header;
  const int family = h.source.ss_family;
  FUZZ_CHECK(family == AF_INET || family == AF_INET6);
  FUZZ_CHECK(h.destination.ss_family == family);
  const std::string_view header = data.substr(0, p.consumed);
  if (h.version == 1) {
    // v1 text: an IPv4 address formats back as written (IPv6 may not).
    if (family == AF_INET) {
      FUZZ_CHECK(header.find(" " + tlsedge::net::formatIp(h.source) + " ") != header.npos);
      FUZZ_CHECK(header.find(" " + tlsedge::net::formatIp(h.destination) + " ") != header.npos);
    }
  } else {
    const size_t ip = family == AF_INET ? 4 : 16;
    FUZZ_CHECK(p.consumed >= 16 + 2 * ip + 4);
    FUZZ_CHECK(inV2Block(data, h.source, 16, 16 + 2 * ip));
    FUZZ_CHECK(inV2Block(data, h.destination, 16 + ip, 16 + 2 * ip + 2));
  }
  // What tlsedge sends an origin carries the same addresses.
  tlsedge::net::ProxyClient client;
  client.source = h.source;
  client.destination = h.destination;
  const std::string built = tlsedge::net::buildProxyV2(client);
  const ProxyParse again = tlsedge::net::parseProxyHeader(built);
  FUZZ_CHECK(again.state == State::kDone && again.consumed == built.size());
  FUZZ_CHECK(again.header.hasAddresses);
  FUZZ_CHECK(sameAddress(again.header.source, h.source));
  FUZZ_CHECK(sameAddress(again.header.destination, h.destination));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  const ProxyParse p = tlsedge::net::parseProxyHeader(data);
  const auto signature = tlsedge::net::matchProxySignature(data);
  if (p.state == State::kInvalid) {
    FUZZ_CHECK(!p.error.empty());
    return 0;
  }
  if (p.state == State::kNeedMore) {
    FUZZ_CHECK(signature != tlsedge::net::ProxySignature::kNo);
    return 0;
  }
  FUZZ_CHECK(signature == tlsedge::net::ProxySignature::kYes);
  FUZZ_CHECK(p.consumed > 0 && p.consumed <= size);
  FUZZ_CHECK(p.header.version == 1 || p.header.version == 2);
  if (p.header.version == 1) {
    FUZZ_CHECK(p.consumed <= tlsedge::net::kMaxProxyV1Length);
  } else {
    FUZZ_CHECK(p.consumed >= 16 && p.consumed <= 16 + tlsedge::net::kMaxProxyV2Length);
    FUZZ_CHECK(p.consumed == 16 + ((size_t{bytes[14]} << 8) | bytes[15]));
  }
  // The header alone parses the same; a prefix of it waits for more.
  const ProxyParse exact = tlsedge::net::parseProxyHeader(data.substr(0, p.consumed));
  FUZZ_CHECK(exact.state == State::kDone && exact.consumed == p.consumed);
  for (size_t cut : {size_t{1}, size_t{15}, p.consumed / 2, p.consumed - 1}) {
    if (cut == 0 || cut >= p.consumed) continue;
    FUZZ_CHECK(tlsedge::net::parseProxyHeader(data.substr(0, cut)).state == State::kNeedMore);
  }
  if (p.header.hasAddresses) checkAddresses(data, p);
  return 0;
}
