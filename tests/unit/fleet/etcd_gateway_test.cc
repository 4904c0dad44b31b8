// The etcd JSON gateway's encodings (fleet/etcd_client.h), on answers shaped
// as docs/etcd.md records them: base64 bytes, int64 as strings, zero
// fields omitted, two error shapes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fleet/etcd_client.h"

namespace tlsedge::fleet {
namespace {

using Json = nlohmann::json;

TEST(EtcdGateway, PrefixEndIncrementsTheLastByte) {
  EXPECT_EQ(prefixEnd("/p/"), "/p0");
  EXPECT_EQ(prefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefixEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));  // every key
}

TEST(EtcdGateway, Base64RoundTripsBytes) {
  const std::string bytes("\0\x01\xfe\xff/t/a", 7);
  EXPECT_EQ(gateway::base64("/t/a"), "L3QvYQ==");
  auto back = gateway::unbase64(gateway::base64(bytes));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, bytes);
  EXPECT_FALSE(gateway::unbase64("L3Q*YQ==").ok());
  EXPECT_EQ(*gateway::unbase64(""), "");
}

TEST(EtcdGateway, IntegersAreStringsNumbersOrAbsent) {
  const Json answer =
      Json::parse(R"({"revision":"4119564720460258036","count":5,"bad":"12x","float":"1.5"})");
  EXPECT_EQ(*gateway::integer(answer, "revision"), 4119564720460258036);  // above 2^53
  EXPECT_EQ(*gateway::integer(answer, "count"), 5);
  EXPECT_EQ(*gateway::integer(answer, "absent"), 0);
  EXPECT_FALSE(gateway::integer(answer, "bad").ok());
  EXPECT_FALSE(gateway::integer(answer, "float").ok());
}

TEST(EtcdGateway, KeyValuesDecodeWithTheirZeroFieldsOmitted) {
  auto kv = gateway::keyValue(Json::parse(
      R"({"key":"L3AvYQ==","create_revision":"4","mod_revision":"9","version":"2","value":"dmFsLWE="})"));
  ASSERT_TRUE(kv.ok()) << kv.error().message;
  EXPECT_EQ(kv->key, "/p/a");
  EXPECT_EQ(kv->value, "val-a");
  EXPECT_EQ(kv->createRevision, 4);
  EXPECT_EQ(kv->modRevision, 9);
  EXPECT_EQ(kv->version, 2);
  EXPECT_EQ(kv->lease, 0);
  auto empty = gateway::keyValue(Json::parse(R"({"key":"L3AvYQ==","mod_revision":"21"})"));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->value, "");  // an empty value (or a delete event) has none
  EXPECT_FALSE(gateway::keyValue(Json::parse(R"({"key":5})")).ok());
  EXPECT_FALSE(gateway::keyValue(Json::parse(R"([])")).ok());
}

TEST(EtcdGateway, ErrorsKeepEtcdsMessageAndSayWhenAMemberCannotServe) {
  Error unary = gateway::answerError(
      400,
      R"({"error":"etcdserver: request is too large","message":"etcdserver: request is too large","code":3})");
  EXPECT_EQ(unary.message, "etcdserver: request is too large");
  EXPECT_EQ(unary.kind, ErrorKind::kFailed);
  Error timedOut = gateway::answerError(
      503,
      R"({"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14})");
  EXPECT_EQ(timedOut.kind, ErrorKind::kUnavailable);
  Error noQuorum = gateway::answerError(
      500,
      R"({"error":"context deadline exceeded","message":"context deadline exceeded","code":2})");
  EXPECT_EQ(noQuorum.kind, ErrorKind::kUnavailable);  // another member may have quorum
  Error stream = gateway::answerError(
      200,
      R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}})");
  EXPECT_EQ(stream.message, "etcdserver: no leader");
  EXPECT_EQ(stream.kind, ErrorKind::kUnavailable);
  Error bare = gateway::answerError(405, "Method Not Allowed");
  EXPECT_EQ(bare.message, "HTTP 405");
}

}  // namespace
}  // namespace tlsedge::fleet
