// PROXY protocol headers, v1 and v2 (HAProxy's spec), byte by byte: what is
// read, what is refused and why, and that nothing past the header is taken.
#include "net/proxy_header.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>

namespace tlsedge::net {
namespace {

using State = ProxyParse::State;

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

uint16_t port(const sockaddr_storage& s) {
  return s.ss_family == AF_INET ? ntohs(reinterpret_cast<const sockaddr_in*>(&s)->sin_port)
                                : ntohs(reinterpret_cast<const sockaddr_in6*>(&s)->sin6_port);
}

std::string be16(size_t v) {
  return {static_cast<char>((v >> 8) & 0xFF), static_cast<char>(v & 0xFF)};
}

std::string tlv(uint8_t type, const std::string& value) {
  return std::string(1, static_cast<char>(type)) + be16(value.size()) + value;
}

// A v2 PROXY/STREAM header over IPv4 192.0.2.7:40000 -> 198.51.100.1:443.
std::string v2Inet(const std::string& tlvs = "", uint8_t command = 0x21, uint8_t fam = 0x11) {
  const std::string addresses =
      std::string("\xC0\x00\x02\x07\xC6\x33\x64\x01", 8) + be16(40000) + be16(443);
  return kSig + std::string(1, static_cast<char>(command)) +
         std::string(1, static_cast<char>(fam)) + be16(addresses.size() + tlvs.size()) + addresses +
         tlvs;
}

// CRC-32C of `data`, to build a header that carries a right checksum.
uint32_t crc32c(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char b : data) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

TEST(ProxyHeader, V1Tcp4LeavesWhatFollows) {
  const std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\n";
  ProxyParse p = parseProxyHeader(line + "\x16\x03\x01");
  ASSERT_EQ(p.state, State::kDone) << p.error;
  EXPECT_EQ(p.consumed, line.size());
  EXPECT_EQ(p.header.version, 1);
  EXPECT_TRUE(p.header.hasAddresses);
  EXPECT_EQ(formatIp(p.header.source), "192.0.2.7");
  EXPECT_EQ(port(p.header.source), 40000);
  EXPECT_EQ(formatIp(p.header.destination), "198.51.100.1");
  EXPECT_EQ(port(p.header.destination), 443);
}

TEST(ProxyHeader, V1Tcp6AndUnknown) {
  ProxyParse p = parseProxyHeader("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n");
  ASSERT_EQ(p.state, State::kDone) << p.error;
  EXPECT_EQ(formatIp(p.header.source), "2001:db8::7");
  EXPECT_EQ(port(p.header.destination), 65535);
  p = parseProxyHeader("PROXY UNKNOWN whatever follows\r\n");
  ASSERT_EQ(p.state, State::kDone) << p.error;
  EXPECT_FALSE(p.header.hasAddresses);
}

TEST(ProxyHeader, V1WaitsForItsLineThenBoundsIt) {
  const std::string line = "PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\n";
  for (size_t n = 0; n < line.size(); ++n) {
    EXPECT_EQ(parseProxyHeader(line.substr(0, n)).state, State::kNeedMore) << n;
  }
  const ProxyParse p = parseProxyHeader("PROXY TCP4 " + std::string(120, '1'));
  ASSERT_EQ(p.state, State::kInvalid);
  EXPECT_NE(p.error.find("107"), std::string::npos) << p.error;
}

TEST(ProxyHeader, V1MalformedLinesAreRefusedWithTheReason) {
  const struct {
    const char* line;
    const char* reason;
  } cases[] = {
      {"PROXY TCP4 192.0.2.7 198.51.100.1 40000\r\n", "is not `PROXY TCP4|TCP6"},
      {"PROXY TCP4 192.0.2.7 198.51.100.1 40000 443 extra\r\n", "is not `PROXY TCP4|TCP6"},
      {"PROXY UDP4 192.0.2.7 198.51.100.1 40000 443\r\n", "`UDP4` is not TCP4"},
      {"PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n", "port"},
      {"PROXY TCP4 192.0.2.7 198.51.100.1 0400 443\r\n", "port"},
      {"PROXY TCP4 192.0.2.7 198.51.100.1 +40 443\r\n", "port"},
      {"PROXY TCP4 2001:db8::7 198.51.100.1 40000 443\r\n", "not a TCP4 address"},
      {"PROXY TCP6 192.0.2.7 2001:db8::1 40000 443\r\n", "not a TCP6 address"},
      {"PROXY TCP4  192.0.2.7 198.51.100.1 40000 443\r\n", ""},
  };
  for (const auto& c : cases) {
    const ProxyParse p = parseProxyHeader(c.line);
    EXPECT_EQ(p.state, State::kInvalid) << c.line;
    EXPECT_NE(p.error.find(c.reason), std::string::npos) << c.line << ": " << p.error;
  }
}

// Found by tests/fuzz (fuzz_proxy_header): NUL bytes inside an address
// field were cut off by inet_pton, so the line was taken as 192.0.2.7.
TEST(ProxyHeader, V1AddressWithNulBytesIsRefused) {
  for (const std::string& line :
       {std::string("PROXY TCP4 192.0.2.7\0\0 198.51.100.1 40000 443\r\n", 47),
        std::string("PROXY TCP6 2001:db8::7 2001:db8::1\0 1 65535\r\n", 45)}) {
    const ProxyParse p = parseProxyHeader(line);
    EXPECT_EQ(p.state, State::kInvalid) << line;
    EXPECT_NE(p.error.find("address"), std::string::npos) << p.error;
  }
}

TEST(ProxyHeader, NotAHeaderAtAll) {
  EXPECT_EQ(parseProxyHeader("GET / HTTP/1.1\r\n").state, State::kInvalid);
  EXPECT_EQ(parseProxyHeader("\x16\x03\x01\x02").state, State::kInvalid);
  EXPECT_EQ(matchProxySignature("PRO"), ProxySignature::kPartial);
  EXPECT_EQ(matchProxySignature("POST /"), ProxySignature::kNo);
  EXPECT_EQ(matchProxySignature("PROPFIND"), ProxySignature::kNo);
  EXPECT_EQ(matchProxySignature("PROXY "), ProxySignature::kYes);
  EXPECT_EQ(matchProxySignature(kSig.substr(0, 5)), ProxySignature::kPartial);
  EXPECT_EQ(matchProxySignature(kSig), ProxySignature::kYes);
  EXPECT_EQ(matchProxySignature("\r\n\r\nGET"), ProxySignature::kNo);
}

TEST(ProxyHeader, V2InetWithTlvs) {
  const std::string tlvs = tlv(0x01, "h2") + tlv(0x02, "shop.example") + tlv(0x04, "pad") +
                           tlv(0x20, std::string("\x01\x00\x00\x00\x00", 5) + tlv(0x21, "TLSv1.3") +
                                         tlv(0x23, "TLS_AES_128_GCM_SHA256"));
  const std::string header = v2Inet(tlvs);
  const ProxyParse p = parseProxyHeader(header + "rest");
  ASSERT_EQ(p.state, State::kDone) << p.error;
  EXPECT_EQ(p.consumed, header.size());
  EXPECT_EQ(p.header.version, 2);
  EXPECT_EQ(formatIp(p.header.source), "192.0.2.7");
  EXPECT_EQ(port(p.header.source), 40000);
  EXPECT_EQ(formatIp(p.header.destination), "198.51.100.1");
  EXPECT_EQ(p.header.alpn, "h2");
  EXPECT_EQ(p.header.authority, "shop.example");
  EXPECT_EQ(p.header.tlvs, 6u);
  for (size_t n = 0; n < header.size(); ++n) {
    EXPECT_EQ(parseProxyHeader(header.substr(0, n)).state, State::kNeedMore) << n;
  }
}

TEST(ProxyHeader, V2Inet6AndLocal) {
  std::string addresses(36, '\0');
  addresses[15] = 7;  // ::7
  addresses[31] = 1;  // ::1
  addresses.replace(32, 4, be16(1234) + be16(8443));
  ProxyParse p = parseProxyHeader(kSig + "\x21\x21" + be16(36) + addresses);
  ASSERT_EQ(p.state, State::kDone) << p.error;
  EXPECT_EQ(formatIp(p.header.source), "::7");
  EXPECT_EQ(port(p.header.destination), 8443);
  // LOCAL (a health check): the addresses, if any, are not the client's.
  p = parseProxyHeader(v2Inet("", 0x20));
  ASSERT_EQ(p.state, State::kDone) << p.error;
  EXPECT_FALSE(p.header.hasAddresses);
  p = parseProxyHeader(kSig + std::string("\x21\x00", 2) + be16(0));  // PROXY over UNSPEC
  ASSERT_EQ(p.state, State::kDone) << p.error;
  EXPECT_FALSE(p.header.hasAddresses);
}

TEST(ProxyHeader, V2Crc32cIsChecked) {
  std::string header = v2Inet(tlv(0x03, std::string(4, '\0')));
  const uint32_t crc = crc32c(header);
  header.replace(header.size() - 4, 4,
                 {static_cast<char>(crc >> 24), static_cast<char>(crc >> 16),
                  static_cast<char>(crc >> 8), static_cast<char>(crc)});
  EXPECT_EQ(parseProxyHeader(header).state, State::kDone);
  header[20] ^= 1;  // a source address bit
  const ProxyParse p = parseProxyHeader(header);
  ASSERT_EQ(p.state, State::kInvalid);
  EXPECT_NE(p.error.find("CRC-32C"), std::string::npos) << p.error;
}

TEST(ProxyHeader, V2MalformedHeadersAreRefusedWithTheReason) {
  const struct {
    std::string bytes;
    const char* reason;
  } cases[] = {
      {v2Inet("", 0x11), "version 1 is not 2"},
      {v2Inet("", 0x22), "command 2"},
      {v2Inet("", 0x21, 0x12), "not STREAM"},
      {v2Inet("", 0x21, 0x41), "family or transport"},
      {kSig + "\x21\x11" + be16(4) + "abcd", "shorter than its addresses"},
      {kSig + "\x21\x11" + be16(4096), "more than 2048"},
      {v2Inet(std::string("\x04\x00", 2)), "TLV cut short"},
      {v2Inet(std::string("\x04\x00\x09xy", 5)), "runs past"},
      {v2Inet(tlv(0x20, "abc")), "SSL TLV shorter"},
      {v2Inet(tlv(0x20, std::string(5, '\0') + std::string("\x21\x00\x09", 3))), "runs past"},
      {v2Inet(tlv(0x05, std::string(129, 'u'))), "unique ID"},
      {v2Inet(tlv(0x02, "")), "authority"},
      {v2Inet(tlv(0x03, "abc")), "CRC-32C TLV of 3"},
  };
  for (const auto& c : cases) {
    const ProxyParse p = parseProxyHeader(c.bytes);
    EXPECT_EQ(p.state, State::kInvalid) << c.reason;
    EXPECT_NE(p.error.find(c.reason), std::string::npos) << c.reason << ": " << p.error;
  }
}

sockaddr_storage address(const char* ip, uint16_t p) {
  sockaddr_storage s{};
  if (inet_pton(AF_INET, ip, &reinterpret_cast<sockaddr_in*>(&s)->sin_addr) == 1) {
    s.ss_family = AF_INET;
    reinterpret_cast<sockaddr_in*>(&s)->sin_port = htons(p);
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, ip, &reinterpret_cast<sockaddr_in6*>(&s)->sin6_addr), 1);
    s.ss_family = AF_INET6;
    reinterpret_cast<sockaddr_in6*>(&s)->sin6_port = htons(p);
  }
  return s;
}

TEST(ProxyHeader, BuiltV2ReadsBackWithItsTlvs) {
  ProxyClient client;
  client.source = address("192.0.2.7", 40000);
  client.destination = address("198.51.100.1", 443);
  client.tls = true;
  client.version = "TLSv1.3";
  client.cipher = "TLS_AES_128_GCM_SHA256";
  client.sni = "shop.example";
  client.alpn = "h2";
  const std::string header = buildProxyV2(client);
  const ProxyParse p = parseProxyHeader(header + "GET /");
  ASSERT_EQ(p.state, State::kDone) << p.error;
  EXPECT_EQ(p.consumed, header.size());
  EXPECT_EQ(formatIp(p.header.source), "192.0.2.7");
  EXPECT_EQ(port(p.header.source), 40000);
  EXPECT_EQ(formatIp(p.header.destination), "198.51.100.1");
  EXPECT_EQ(port(p.header.destination), 443);
  EXPECT_EQ(p.header.authority, "shop.example");
  EXPECT_EQ(p.header.alpn, "h2");
  EXPECT_EQ(p.header.tlvs, 5u);  // ALPN, authority, SSL with version and cipher
  EXPECT_NE(header.find("TLS_AES_128_GCM_SHA256"), std::string::npos);
}

TEST(ProxyHeader, BuiltV2OverIpv6AndWithoutAddresses) {
  ProxyClient client;
  client.source = address("2001:db8::7", 1);
  client.destination = address("2001:db8::1", 8443);
  ProxyParse p = parseProxyHeader(buildProxyV2(client));
  ASSERT_EQ(p.state, State::kDone) << p.error;
  EXPECT_EQ(formatIp(p.header.source), "2001:db8::7");
  EXPECT_EQ(port(p.header.destination), 8443);
  EXPECT_EQ(p.header.tlvs, 0u);
  client.destination = address("198.51.100.1", 443);  // families differ: none sent
  p = parseProxyHeader(buildProxyV2(client));
  ASSERT_EQ(p.state, State::kDone) << p.error;
  EXPECT_FALSE(p.header.hasAddresses);
}

}  // namespace
}  // namespace tlsedge::net
