#include "http/request_target.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace tlsedge::http {
namespace {

http::MessageHead head(std::string method, std::string target,
                       std::initializer_list<http::Header> headers) {
  http::MessageHead h;
  h.method = std::move(method);
  h.target = std::move(target);
  h.headers = headers;
  return h;
}

// (refusal reason, authority, target) for one head.
struct Resolved {
  std::string refused;
  std::string authority;
  std::string target;
};

Resolved resolve(const http::MessageHead& h) {
  RequestTarget t;
  const std::string_view refused = resolveRequestTarget(h, t);
  return {std::string(refused), std::string(t.authority), std::string(t.target)};
}

TEST(RequestTargetTest, OriginFormRoutesByHost) {
  const Resolved r = resolve(head("GET", "/p?q=1", {{"Host", "a.example:8443"}}));
  EXPECT_EQ(r.refused, "");
  EXPECT_EQ(r.authority, "a.example:8443");
  EXPECT_EQ(r.target, "/p?q=1");
}

TEST(RequestTargetTest, AbsoluteFormAuthorityWinsOverHost) {
  const Resolved r = resolve(head("GET", "http://b.example/x?y#frag", {{"Host", "a.example"}}));
  EXPECT_EQ(r.refused, "");
  EXPECT_EQ(r.authority, "b.example");
  EXPECT_EQ(r.target, "/x?y");
  // Without a path the target is "/" (with the query kept), RFC 9112 3.2.1.
  EXPECT_EQ(resolve(head("GET", "HTTPS://b.example:1?q", {{"Host", "a"}})).target, "/?q");
  EXPECT_EQ(resolve(head("GET", "http://[::1]:8080", {})).authority, "[::1]:8080");
  EXPECT_EQ(resolve(head("GET", "http://[::1]:8080", {})).target, "/");
}

TEST(RequestTargetTest, AsteriskIsForOptionsOnly) {
  EXPECT_EQ(resolve(head("OPTIONS", "*", {{"Host", "a"}})).target, "*");
  EXPECT_EQ(resolve(head("GET", "*", {{"Host", "a"}})).refused,
            "the target \"*\" is for OPTIONS only");
}

TEST(RequestTargetTest, RefusedHeads) {
  const struct {
    http::MessageHead head;
    const char* reason;
  } cases[] = {
      {head("GET", "/", {{"Host", "a"}, {"host", "b"}}), "more than one Host field"},
      {head("GET", "/", {{"Host", "a"}, {"Host", "a"}}), "more than one Host field"},
      {head("GET", "/", {}), "missing Host header"},
      {head("GET", "/", {{"Host", ""}}), "missing Host header"},
      {head("GET", "/", {{"Host", "a b"}}), "invalid Host header"},
      {head("GET", "/", {{"Host", "a@b"}}), "invalid Host header"},
      {head("GET", "/", {{"Host", "a:8x"}}), "invalid Host header"},
      {head("GET", "/", {{"Host", "[::1"}}), "invalid Host header"},
      {head("GET", "http://u@a/", {{"Host", "a"}}),
       "userinfo in the request target (RFC 9110 4.2.4)"},
      {head("GET", "http://u:p@a/", {}), "userinfo in the request target (RFC 9110 4.2.4)"},
      {head("GET", "ftp://a/", {{"Host", "a"}}),
       "the request target's scheme is not http or https"},
      {head("GET", "http:///p", {{"Host", "a"}}), "the request target has no host"},
      {head("GET", "http://a%2eb/", {{"Host", "a"}}), "invalid host in the request target"},
      {head("GET", "p", {{"Host", "a"}}),
       "the request target is neither a path nor an absolute http(s) URI"},
      // Two Host fields are refused even when the target names the authority.
      {head("GET", "http://a/", {{"Host", "a"}, {"Host", "b"}}), "more than one Host field"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(resolve(c.head).refused, c.reason) << c.head.target;
  }
}

TEST(RequestTargetTest, AuthorityHost) {
  EXPECT_EQ(authorityHost("a.example"), "a.example");
  EXPECT_EQ(authorityHost("a.example:443"), "a.example");
  EXPECT_EQ(authorityHost("a.example:"), "a.example");
  EXPECT_EQ(authorityHost("[2001:db8::1]:80"), "[2001:db8::1]");
  EXPECT_EQ(authorityHost("_acme.x~y"), "_acme.x~y");
  for (const char* bad :
       {"", "[]", "[::1]x", "a:1:2", "a:123456", "a/b", "a\r\nb", "a%41", "[::g]"}) {
    EXPECT_EQ(authorityHost(bad), "") << bad;
  }
  EXPECT_EQ(authorityHost(std::string(254, 'a')), std::string(254, 'a'));
  EXPECT_EQ(authorityHost(std::string(255, 'a')), "");
}

}  // namespace
}  // namespace tlsedge::http
