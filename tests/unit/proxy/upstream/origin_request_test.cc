// originRequestHead: what crosses from a client's request to the origin.
#include "proxy/upstream/origin_request.h"

#include <gtest/gtest.h>

#include <string>

namespace tlsedge::proxy {
namespace {

http::MessageHead request(std::vector<http::Header> headers) {
  http::MessageHead head;
  head.method = "POST";
  head.target = "http://ignored.example/a?b";
  head.headers = std::move(headers);
  return head;
}

TEST(OriginRequest, WritesHostFramingAndForwardingItselfAndDropsHopByHop) {
  auto head = request({{"Host", "client.example"},
                       {"Connection", "keep-alive, X-Secret, Content-Length"},
                       {"X-Secret", "hop"},
                       {"Keep-Alive", "timeout=5"},
                       {"TE", "trailers"},
                       {"Transfer-Encoding", "chunked"},
                       {"X-Forwarded-For", "6.6.6.6"},
                       {"x-forwarded-proto", "http"},
                       {"X-Forwarded-Host", "evil.example"},
                       {"Accept", "*/*"},
                       {"Expect", "100-continue"},
                       {"Cookie", "a=1"}});
  head.chunked = true;
  const std::string out = originRequestHead(
      {head, "/a?b", "shop.example:8443", "192.0.2.7", /*https=*/true, /*keepExpect=*/true, {}});
  EXPECT_EQ(out,
            "POST /a?b HTTP/1.1\r\n"
            "Host: shop.example:8443\r\n"
            "Accept: */*\r\n"
            "Expect: 100-continue\r\n"
            "Cookie: a=1\r\n"
            "Transfer-Encoding: chunked\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: shop.example:8443\r\n"
            "\r\n");
}

TEST(OriginRequest, LengthUpgradeAndAnHttp10ClientsExpect) {
  auto head = request({{"Content-Length", "999"},  // the parser's value is written instead
                       {"Upgrade", "websocket, h2c"},
                       {"Connection", "Upgrade"},
                       {"Expect", "100-continue"}});
  head.contentLength = 5;
  const std::string out = originRequestHead(
      {head, "/ws", "chat.example", "::1", /*https=*/false, /*keepExpect=*/false, "websocket"});
  EXPECT_EQ(out,
            "POST /ws HTTP/1.1\r\n"
            "Host: chat.example\r\n"
            "Content-Length: 5\r\n"
            "Connection: upgrade\r\n"
            "Upgrade: websocket\r\n"
            "X-Forwarded-For: ::1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: chat.example\r\n"
            "\r\n");
}

TEST(OriginRequest, NoBodyNoFraming) {
  auto head = request({});
  head.method = "GET";
  const std::string out = originRequestHead({head, "/", "a.example", "127.0.0.1", true, true, {}});
  EXPECT_EQ(out.find("Content-Length"), std::string::npos);
  EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(out.rfind("GET / HTTP/1.1\r\nHost: a.example\r\n", 0), 0u);
}

}  // namespace
}  // namespace tlsedge::proxy
