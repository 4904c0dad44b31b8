#include "http/http_util.h"

#include <gtest/gtest.h>

namespace tlsedge::http {
namespace {

TEST(HttpUtilTest, ChunkIsHexSizeCrlfDataCrlf) {
  EXPECT_EQ(chunk("hello"), "5\r\nhello\r\n");
  EXPECT_EQ(chunk(std::string(255, 'x')), "ff\r\n" + std::string(255, 'x') + "\r\n");
  EXPECT_EQ(kLastChunk, "0\r\n\r\n");
}

TEST(HttpUtilTest, ConnectionTokensAreTrimmed) {
  http::MessageHead head;
  head.headers = {{"Connection", " Keep-Alive , X-Foo,,\t"}, {"connection", "Upgrade"}};
  EXPECT_EQ(connectionTokens(head),
            (std::vector<std::string_view>{"Keep-Alive", "X-Foo", "Upgrade"}));
}

TEST(HttpUtilTest, HopByHopIncludesFixedSetAndConnectionNamed) {
  const std::vector<std::string_view> tokens{"x-FOO"};
  for (const char* name : {"Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding",
                           "Upgrade", "Proxy-Connection", "X-Foo"}) {
    EXPECT_TRUE(isHopByHop(name, tokens)) << name;
  }
  EXPECT_FALSE(isHopByHop("Content-Length", tokens));
  EXPECT_FALSE(isHopByHop("X-Foo-Bar", tokens));
}

TEST(HttpUtilTest, SimpleResponseFramesBodyAndCloses) {
  EXPECT_EQ(simpleResponse(404, "text/plain", "nope\n", false, "X-A: b\r\n", false),
            "HTTP/1.1 404 Not Found\r\nServer: tlsedge\r\nContent-Type: text/plain\r\n"
            "Content-Length: 5\r\nX-A: b\r\nConnection: close\r\n\r\nnope\n");
}

TEST(HttpUtilTest, SimpleResponseToHeadKeepsLengthDropsBody) {
  EXPECT_EQ(simpleResponse(200, "", "abc", true, "", true),
            "HTTP/1.1 200 OK\r\nServer: tlsedge\r\nContent-Length: 3\r\n\r\n");
}

TEST(HttpUtilTest, TrailersThatMayBeRelayed) {
  for (const char* name : {"grpc-status", "X-Checksum", "Server-Timing", "Digest"}) {
    EXPECT_TRUE(relayableTrailer(name)) << name;
  }
  for (const char* name : {"Host", "content-length", "Transfer-Encoding", "Set-Cookie",
                           "Authorization", "If-Match", "Trailer", "Connection", "TE", ""}) {
    EXPECT_FALSE(relayableTrailer(name)) << name;
  }
  EXPECT_EQ(lastChunk({}), kLastChunk);
  EXPECT_EQ(lastChunk({{"X-Sum", "1"}, {"Host", "evil"}, {"grpc-status", "0"}}),
            "0\r\nX-Sum: 1\r\ngrpc-status: 0\r\n\r\n");
}

TEST(HttpUtilTest, ReasonPhrases) {
  EXPECT_EQ(reasonPhrase(308), "Permanent Redirect");
  EXPECT_EQ(reasonPhrase(502), "Bad Gateway");
  EXPECT_EQ(reasonPhrase(299), "Unknown");
}

}  // namespace
}  // namespace tlsedge::http
