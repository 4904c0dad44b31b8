// The PROXY protocol header (HAProxy's spec, versions 1 and 2) a load
// balancer puts before a connection's first byte to say whose it is.
//
// Pure functions over the bytes received so far: no I/O, no state; the
// Stream that expects a header (Stream::expectProxyHeader) feeds them.
// Bounded: a v1 line is at most 107 bytes, a v2 header at most
// kMaxProxyV2Length bytes after its 16-byte preamble; its TLVs are walked
// and each must fit inside its parent.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace tlsedge::net {

inline constexpr size_t kMaxProxyV1Length = 107;   // "PROXY TCP6 ...\r\n", the spec's bound
inline constexpr size_t kMaxProxyV2Length = 2048;  // after the 16 bytes; TLVs included

struct ProxyHeader {
  int version = 0;  // 1 or 2
  // false: the balancer's own connection (v2 LOCAL, health checks) or an
  // unknown family (v1 UNKNOWN, v2 UNSPEC / AF_UNIX): the socket's
  // addresses stand.
  bool hasAddresses = false;
  sockaddr_storage source{};       // the client
  sockaddr_storage destination{};  // where it connected to
  std::string authority;           // v2 PP2_TYPE_AUTHORITY (the client's SNI), if sent
  std::string alpn;                // v2 PP2_TYPE_ALPN, if sent
  size_t tlvs = 0;                 // v2 TLVs seen (nested SSL ones included)
};

struct ProxyParse {
  enum class State { kNeedMore, kDone, kInvalid };
  State state = State::kNeedMore;
  size_t consumed = 0;  // kDone: the header's length; what follows is the connection's
  ProxyHeader header;   // kDone
  std::string error;    // kInvalid: what is wrong, for the log
};

// Parses the header at the start of `data` (everything received so far).
ProxyParse parseProxyHeader(std::string_view data);

// What a v2 header sent to an origin says of the client's connection (as
// HAProxy's send-proxy-v2-ssl): its addresses (same family, else none are
// sent), and for TLS the version, cipher, SNI (as PP2_TYPE_AUTHORITY) and
// ALPN.
struct ProxyClient {
  sockaddr_storage source{};
  sockaddr_storage destination{};
  bool tls = false;
  std::string version, cipher, sni, alpn;
};
std::string buildProxyV2(const ProxyClient& client);

// Whether `data` starts like a PROXY header (v1 "PROXY " or the v2
// signature): kNo as soon as a byte differs, kPartial while `data` is a
// prefix of one.
enum class ProxySignature { kNo, kPartial, kYes };
ProxySignature matchProxySignature(std::string_view data);

// "203.0.113.7" / "2001:db8::1" (empty for another family).
std::string formatIp(const sockaddr* address);
inline std::string formatIp(const sockaddr_storage& address) {
  return formatIp(reinterpret_cast<const sockaddr*>(&address));
}

}  // namespace tlsedge::net
