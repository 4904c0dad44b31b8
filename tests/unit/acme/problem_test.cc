#include "acme/problem.h"

#include <gtest/gtest.h>

namespace tlsedge::acme {
namespace {

TEST(Problem, ParsesTypeDetailStatusAndSubproblems) {
  auto p = parseProblem(R"({
    "type": "urn:ietf:params:acme:error:rejectedIdentifier",
    "detail": "Some identifiers were rejected",
    "status": 400,
    "subproblems": [
      {"type": "urn:ietf:params:acme:error:malformed", "detail": "Invalid underscore",
       "identifier": {"type": "dns", "value": "_example.org"}}
    ]})");
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->is("rejectedIdentifier"));
  EXPECT_FALSE(p->is("badNonce"));
  EXPECT_EQ(p->status, 400);
  ASSERT_EQ(p->subproblems.size(), 1u);
  EXPECT_EQ(p->subproblems[0].identifier, "_example.org");
  EXPECT_EQ(p->text(),
            "rejectedIdentifier: Some identifiers were rejected (400) [_example.org: malformed: "
            "Invalid underscore]");
}

TEST(Problem, BadNonce) {
  auto p = parseProblem(
      R"({"type":"urn:ietf:params:acme:error:badNonce","detail":"JWS has an invalid anti-replay nonce","status":400})");
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->is("badNonce"));
}

TEST(Problem, KindIsAnRfc8555TypeOrOther) {
  Problem p;
  p.type = "urn:ietf:params:acme:error:rateLimited";
  EXPECT_EQ(p.kind(), "rateLimited");
  p.type = "urn:ietf:params:acme:error:caa";
  EXPECT_EQ(p.kind(), "caa");
  p.type = "urn:ietf:params:acme:error:somethingNew";  // a CA's own: a bounded label stays so
  EXPECT_EQ(p.kind(), "other");
  p.type = "about:blank";
  EXPECT_EQ(p.kind(), "other");
}

TEST(Problem, NotAProblem) {
  EXPECT_FALSE(parseProblem("").has_value());
  EXPECT_FALSE(parseProblem("<html>").has_value());
  EXPECT_FALSE(parseProblem(R"({"status":"valid"})").has_value());
  EXPECT_FALSE(parseProblem("[1,2]").has_value());
}

}  // namespace
}  // namespace tlsedge::acme
