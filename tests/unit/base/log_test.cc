#include "base/log.h"

#include <gtest/gtest.h>

#include <string>

#include "base/json_string.h"

namespace tlsedge::log {
namespace {

TEST(LogTest, SyslogLineHasThePriorityPrefix) {
  EXPECT_EQ(formatLine(Format::kSyslog, Level::kError, "boom", 0), "<3>boom");
  EXPECT_EQ(formatLine(Format::kSyslog, Level::kDebug, "", 0), "<7>");
  // journald reads each line as an entry: every one keeps the priority.
  EXPECT_EQ(formatLine(Format::kSyslog, Level::kError, "reload refused:\n  a.yaml:3:1: x", 0),
            "<3>reload refused:\n<3>  a.yaml:3:1: x");
}

TEST(LogTest, JsonLineHasTimeLevelAndMessage) {
  EXPECT_EQ(formatLine(Format::kJson, Level::kInfo, "ready", 1795418430123LL),
            R"({"time":"2026-11-23T07:20:30.123Z","level":"info","message":"ready"})");
  EXPECT_EQ(formatLine(Format::kJson, Level::kWarning, "w", 7),
            R"({"time":"1970-01-01T00:00:00.007Z","level":"warning","message":"w"})");
}

TEST(LogTest, JsonLineEscapesHostileBytes) {
  const std::string hostile("a\"b\\c\n\x01\x7f\xff\0z", 11);
  EXPECT_EQ(formatLine(Format::kJson, Level::kError, hostile, 0),
            R"({"time":"1970-01-01T00:00:00.000Z","level":"error","message":)"
            R"("a\"b\\c\u000a\u0001\u007f\u00ff\u0000z"})");
}

TEST(LogTest, ParsesLevelNames) {
  Level l = Level::kInfo;
  EXPECT_TRUE(parseLevel("debug", &l));
  EXPECT_EQ(l, Level::kDebug);
  EXPECT_TRUE(parseLevel("error", &l));
  EXPECT_EQ(l, Level::kError);
  EXPECT_FALSE(parseLevel("verbose", &l));
  EXPECT_FALSE(parseLevel("", &l));
  EXPECT_EQ(l, Level::kError);
}

}  // namespace
}  // namespace tlsedge::log
