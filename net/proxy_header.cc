#include "net/proxy_header.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace tlsedge::net {
namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr size_t kV2Preamble = 16;

// v2 TLV types (the spec's PP2_TYPE_*).
constexpr uint8_t kTlvAlpn = 0x01;
constexpr uint8_t kTlvAuthority = 0x02;
constexpr uint8_t kTlvCrc32c = 0x03;
constexpr uint8_t kTlvUniqueId = 0x05;
constexpr uint8_t kTlvSsl = 0x20;
constexpr size_t kMaxUniqueId = 128;
constexpr size_t kMaxAuthority = 255;

ProxyParse invalid(std::string error) {
  ProxyParse p;
  p.state = ProxyParse::State::kInvalid;
  p.error = std::move(error);
  return p;
}

uint16_t be16(const unsigned char* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// CRC-32C (Castagnoli), reflected, as PP2_TYPE_CRC32C carries it.
uint32_t crc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

bool setAddress(sockaddr_storage* out, int family, std::string_view ip, uint16_t port) {
  // inet_pton would stop at a NUL byte and take what came before it.
  if (ip.find('\0') != std::string_view::npos) return false;
  std::string text(ip);
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(out);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    return inet_pton(AF_INET, text.c_str(), &a->sin_addr) == 1;
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(out);
  a->sin6_family = AF_INET6;
  a->sin6_port = htons(port);
  return inet_pton(AF_INET6, text.c_str(), &a->sin6_addr) == 1;
}

bool readPort(std::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

// "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", or "PROXY UNKNOWN...\r\n".
ProxyParse parseV1(std::string_view data) {
  const size_t end = data.find("\r\n");
  if (end == std::string_view::npos) {
    if (data.size() >= kMaxProxyV1Length) return invalid("v1 line longer than 107 bytes");
    return {};
  }
  if (end + 2 > kMaxProxyV1Length) return invalid("v1 line longer than 107 bytes");
  ProxyParse p;
  p.state = ProxyParse::State::kDone;
  p.consumed = end + 2;
  p.header.version = 1;
  std::string_view line = data.substr(kV1Prefix.size(), end - kV1Prefix.size());
  std::array<std::string_view, 5> fields;
  size_t n = 0;
  while (!line.empty() && n < fields.size()) {
    const size_t space = line.find(' ');
    fields[n++] = line.substr(0, space);
    line = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
  }
  if (n >= 1 && fields[0] == "UNKNOWN") return p;  // the rest of the line is ignored
  if (n != 5 || !line.empty())
    return invalid("v1 line is not `PROXY TCP4|TCP6 SRC DST SPORT DPORT`");
  int family = 0;
  if (fields[0] == "TCP4") {
    family = AF_INET;
  } else if (fields[0] == "TCP6") {
    family = AF_INET6;
  } else {
    return invalid("v1 protocol `" + std::string(fields[0]) + "` is not TCP4, TCP6 or UNKNOWN");
  }
  uint16_t sport = 0, dport = 0;
  if (!readPort(fields[3], &sport) || !readPort(fields[4], &dport)) {
    return invalid("v1 port is not a number 0..65535");
  }
  if (!setAddress(&p.header.source, family, fields[1], sport) ||
      !setAddress(&p.header.destination, family, fields[2], dport)) {
    return invalid("v1 address is not a " + std::string(fields[0]) + " address");
  }
  p.header.hasAddresses = true;
  return p;
}

// Walks the TLVs of `tlvs` (nested ones of SSL too), filling `header`.
// `whole` is the whole header, for the CRC-32C check.
bool walkTlvs(std::string_view tlvs, std::string_view whole, size_t offset, ProxyHeader& header,
              std::string* error, bool nested) {
  while (!tlvs.empty()) {
    if (tlvs.size() < 3) {
      *error = "v2 TLV cut short";
      return false;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(tlvs.data());
    const uint8_t type = p[0];
    const size_t length = be16(p + 1);
    if (3 + length > tlvs.size()) {
      *error = "v2 TLV of type " + std::to_string(type) + " runs past its header";
      return false;
    }
    const std::string_view value = tlvs.substr(3, length);
    ++header.tlvs;
    if (!nested && type == kTlvSsl) {
      if (length < 5) {
        *error = "v2 SSL TLV shorter than its 5 fixed bytes";
        return false;
      }
      if (!walkTlvs(value.substr(5), whole, offset + 8, header, error, true)) return false;
    } else if (!nested && type == kTlvAlpn) {
      header.alpn = std::string(value);
    } else if (!nested && type == kTlvAuthority) {
      if (length == 0 || length > kMaxAuthority) {
        *error = "v2 authority TLV of " + std::to_string(length) + " bytes";
        return false;
      }
      header.authority = std::string(value);
    } else if (!nested && type == kTlvUniqueId && length > kMaxUniqueId) {
      *error = "v2 unique ID TLV longer than 128 bytes";
      return false;
    } else if (!nested && type == kTlvCrc32c) {
      if (length != 4) {
        *error = "v2 CRC-32C TLV of " + std::to_string(length) + " bytes";
        return false;
      }
      // The checksum covers the whole header with its own value zeroed.
      std::string copy(whole);
      std::memset(copy.data() + offset + 3, 0, 4);
      const uint32_t want =
          (uint32_t{p[3]} << 24) | (uint32_t{p[4]} << 16) | (uint32_t{p[5]} << 8) | uint32_t{p[6]};
      if (crc32c(copy) != want) {
        *error = "v2 CRC-32C does not match";
        return false;
      }
    }
    tlvs.remove_prefix(3 + length);
    offset += 3 + length;
  }
  return true;
}

ProxyParse parseV2(std::string_view data) {
  if (data.size() < kV2Preamble) return {};
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t length = be16(p + 14);
  if (length > kMaxProxyV2Length) {
    return invalid("v2 header of " + std::to_string(length) + " bytes, more than 2048");
  }
  if (data.size() < kV2Preamble + length) return {};
  if ((p[12] >> 4) != 2) return invalid("v2 version " + std::to_string(p[12] >> 4) + " is not 2");
  const int command = p[12] & 0x0F;
  if (command > 1)
    return invalid("v2 command " + std::to_string(command) + " is not LOCAL or PROXY");
  const int family = p[13] >> 4;
  const int transport = p[13] & 0x0F;
  if (family > 3 || transport > 2) return invalid("v2 address family or transport unknown");

  ProxyParse out;
  out.state = ProxyParse::State::kDone;
  out.consumed = kV2Preamble + length;
  out.header.version = 2;
  const std::string_view whole = data.substr(0, out.consumed);
  const std::string_view body = data.substr(kV2Preamble, length);
  size_t addressBytes = 0;
  if (family == 1) addressBytes = 12;
  if (family == 2) addressBytes = 36;
  if (family == 3) addressBytes = 216;
  if (body.size() < addressBytes) return invalid("v2 header shorter than its addresses");
  if (command == 1 && (family == 1 || family == 2)) {
    if (transport != 1) return invalid("v2 transport is not STREAM");
    const auto* a = reinterpret_cast<const unsigned char*>(body.data());
    const size_t ipLength = family == 1 ? 4 : 16;
    const int af = family == 1 ? AF_INET : AF_INET6;
    for (int side = 0; side < 2; ++side) {
      sockaddr_storage& s = side == 0 ? out.header.source : out.header.destination;
      const unsigned char* ip = a + side * ipLength;
      const uint16_t port = be16(a + 2 * ipLength + side * 2);
      if (af == AF_INET) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&s);
        sin->sin_family = AF_INET;
        std::memcpy(&sin->sin_addr, ip, 4);
        sin->sin_port = htons(port);
      } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&s);
        sin6->sin6_family = AF_INET6;
        std::memcpy(&sin6->sin6_addr, ip, 16);
        sin6->sin6_port = htons(port);
      }
    }
    out.header.hasAddresses = true;
  }
  std::string error;
  if (!walkTlvs(body.substr(addressBytes), whole, kV2Preamble + addressBytes, out.header, &error,
                false)) {
    return invalid(error);
  }
  return out;
}

void appendTlv(std::string& out, uint8_t type, std::string_view value) {
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(value.size() >> 8));
  out.push_back(static_cast<char>(value.size() & 0xFF));
  out.append(value);
}

constexpr uint8_t kTlvSslVersion = 0x21;
constexpr uint8_t kTlvSslCipher = 0x23;
constexpr uint8_t kClientSsl = 0x01;  // PP2_CLIENT_SSL

}  // namespace

std::string buildProxyV2(const ProxyClient& client) {
  std::string body;
  const int family = client.source.ss_family;
  uint8_t familyByte = 0x00;  // UNSPEC: no addresses
  if (family == client.destination.ss_family && family == AF_INET) {
    familyByte = 0x11;  // INET, STREAM
    const auto* s = reinterpret_cast<const sockaddr_in*>(&client.source);
    const auto* d = reinterpret_cast<const sockaddr_in*>(&client.destination);
    body.append(reinterpret_cast<const char*>(&s->sin_addr), 4);
    body.append(reinterpret_cast<const char*>(&d->sin_addr), 4);
    body.append(reinterpret_cast<const char*>(&s->sin_port), 2);  // both in network order
    body.append(reinterpret_cast<const char*>(&d->sin_port), 2);
  } else if (family == client.destination.ss_family && family == AF_INET6) {
    familyByte = 0x21;  // INET6, STREAM
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&client.source);
    const auto* d = reinterpret_cast<const sockaddr_in6*>(&client.destination);
    body.append(reinterpret_cast<const char*>(&s->sin6_addr), 16);
    body.append(reinterpret_cast<const char*>(&d->sin6_addr), 16);
    body.append(reinterpret_cast<const char*>(&s->sin6_port), 2);
    body.append(reinterpret_cast<const char*>(&d->sin6_port), 2);
  }
  if (!client.alpn.empty()) appendTlv(body, kTlvAlpn, client.alpn);
  if (!client.sni.empty()) appendTlv(body, kTlvAuthority, client.sni.substr(0, kMaxAuthority));
  if (client.tls) {
    std::string ssl{static_cast<char>(kClientSsl), 0, 0, 0, 0};  // client, verify = 0
    if (!client.version.empty()) appendTlv(ssl, kTlvSslVersion, client.version);
    if (!client.cipher.empty()) appendTlv(ssl, kTlvSslCipher, client.cipher);
    appendTlv(body, kTlvSsl, ssl);
  }
  std::string out(kV2Signature);
  out.push_back(static_cast<char>(0x21));  // version 2, PROXY
  out.push_back(static_cast<char>(familyByte));
  out.push_back(static_cast<char>(body.size() >> 8));
  out.push_back(static_cast<char>(body.size() & 0xFF));
  return out + body;
}

ProxySignature matchProxySignature(std::string_view data) {
  for (std::string_view sig : {kV1Prefix, kV2Signature}) {
    const size_t n = std::min(sig.size(), data.size());
    if (data.substr(0, n) == sig.substr(0, n)) {
      return n == sig.size() ? ProxySignature::kYes : ProxySignature::kPartial;
    }
  }
  return ProxySignature::kNo;
}

ProxyParse parseProxyHeader(std::string_view data) {
  switch (matchProxySignature(data)) {
    case ProxySignature::kNo:
      return invalid("no PROXY protocol header (the first bytes are neither v1 nor v2)");
    case ProxySignature::kPartial:
      return {};
    case ProxySignature::kYes:
      break;
  }
  return data.starts_with(kV1Prefix) ? parseV1(data) : parseV2(data);
}

std::string formatIp(const sockaddr* address) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, buf, sizeof buf);
  } else if (address->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, buf,
              sizeof buf);
  }
  return buf;
}

}  // namespace tlsedge::net
