// parseFlatJsonObject: what the admin API reads from uploads and the CLI
// from error replies.
#include "admin/json_object.h"

#include <gtest/gtest.h>

namespace tlsedge::proxy {
namespace {

TEST(JsonObject, ReadsStringsBoolsNullsAndNumbers) {
  auto o = parseFlatJsonObject(
      R"( { "chain": "-----BEGIN\nA\u0042\t\"q\"\\\/", "replace": true, "x": false,
            "n": null, "k": -1.5e3 } )");
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->at("chain").text, "-----BEGIN\nAB\t\"q\"\\/");
  EXPECT_EQ(o->at("chain").type, JsonScalar::Type::kString);
  EXPECT_TRUE(o->at("replace").boolean);
  EXPECT_EQ(o->at("replace").type, JsonScalar::Type::kBool);
  EXPECT_FALSE(o->at("x").boolean);
  EXPECT_EQ(o->at("x").type, JsonScalar::Type::kBool);
  EXPECT_EQ(o->at("n").type, JsonScalar::Type::kNull);
  EXPECT_EQ(o->at("k").text, "-1.5e3");
  auto empty = parseFlatJsonObject("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(JsonObject, DecodesUnicodeEscapesToUtf8) {
  auto o = parseFlatJsonObject(R"({"a": "\u00e9\u20ac\ud83d\ude00"})");
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(o->at("a").text, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

TEST(JsonObject, RefusesWhatItDoesNotRead) {
  for (const char* bad :
       {"", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":{}}", "{\"a\":[1]}",
        "{\"a\":\"x\"} x", "{\"a\":\"\\q\"}", "{\"a\":\"\\ud83d\"}", "{\"a\":\"x\n\"}",
        "{\"a\":1,\"a\":2}", "{\"a\":tru}", "{\"a\":\"x"}) {
    auto o = parseFlatJsonObject(bad);
    EXPECT_FALSE(o.ok()) << bad;
    if (!o.ok()) {
      EXPECT_NE(o.error().message.find("bad JSON at byte"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace tlsedge::proxy
