#include "proxy/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace tlsedge::proxy {
namespace {

std::string readAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Reads `path` until it has `lines` lines or 5 s pass (the writer is a thread).
std::string waitForLines(const std::string& path, size_t lines) {
  std::string text;
  for (int i = 0; i < 500; ++i) {
    text = readAll(path);
    if (static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) >= lines) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return text;
}

AccessRecord sample() {
  AccessRecord r;
  r.startUnixMs = 1795435200123;  // 2026-11-23T12:00:00.123Z
  r.client = "2001:db8::1";
  r.tls = true;
  r.site = "shop";
  r.host = "shop.example";
  r.method = "GET";
  r.target = "/a?b=c";
  r.status = 200;
  r.bytesIn = 0;
  r.bytesOut = 1234;
  r.durationUs = 12345;
  r.upstream = "origin";
  r.upstreamAddr = "127.0.0.1:8080";
  r.upstreamHeaderUs = 2001;
  return r;
}

TEST(AccessLogTest, FormatsOneJsonLine) {
  EXPECT_EQ(
      formatAccessRecord(sample()),
      "{\"time\":\"2026-11-23T12:00:00.123Z\",\"client\":\"2001:db8::1\",\"scheme\":\"https\","
      "\"site\":\"shop\",\"host\":\"shop.example\",\"method\":\"GET\",\"path\":\"/a?b=c\","
      "\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes_in\":0,\"bytes_out\":1234,"
      "\"duration_ms\":12.345,\"upstream\":\"origin\",\"upstream_addr\":\"127.0.0.1:8080\","
      "\"upstream_header_ms\":2.001}\n");
}

TEST(AccessLogTest, EscapesWhateverBytesAClientSends) {
  AccessRecord r = sample();
  r.target = std::string_view("/\"q\\\x01\n\xff", 7);
  r.upstreamHeaderUs = -1;
  const std::string line = formatAccessRecord(r);
  EXPECT_NE(line.find(R"("path":"/\"q\\\u0001\u000a\u00ff")"), std::string::npos) << line;
  EXPECT_NE(line.find("\"upstream_header_ms\":null}"), std::string::npos) << line;
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
}

class AccessLogFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tlsedge-accesslog-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const char* name) { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(AccessLogFiles, BufferFlushesOnTimerAndReopenFollowsRotation) {
  AccessLogWriter writer;
  ASSERT_TRUE(writer.open(conf::AccessLog{path("access.log")}).ok());
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    AccessLogBuffer buffer(&loop, writer);
    buffer.append(sample());
    buffer.append(sample());
    uv_run(&loop, UV_RUN_DEFAULT);  // the flush timer fires, then nothing is left
    EXPECT_EQ(waitForLines(path("access.log"), 2),
              formatAccessRecord(sample()) + formatAccessRecord(sample()));

    // logrotate: rename, then reload reopens the configured path.
    std::filesystem::rename(path("access.log"), path("access.log.1"));
    ASSERT_TRUE(writer.open(conf::AccessLog{path("access.log")}).ok());
    AccessRecord r = sample();
    r.status = 404;
    buffer.append(r);
    buffer.close();
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_NE(waitForLines(path("access.log"), 1).find("\"status\":404"), std::string::npos);
    const std::string rotated = readAll(path("access.log.1"));
    EXPECT_EQ(std::count(rotated.begin(), rotated.end(), '\n'), 2);
  }
  uv_loop_close(&loop);
}

TEST_F(AccessLogFiles, OffWritesNothingAndBadPathChangesNothing) {
  AccessLogWriter writer;
  EXPECT_FALSE(writer.enabled());
  auto bad = writer.open(conf::AccessLog{path("missing-dir/access.log")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("missing-dir/access.log"), std::string::npos);
  EXPECT_FALSE(writer.enabled());

  ASSERT_TRUE(writer.open(conf::AccessLog{path("a.log")}).ok());
  EXPECT_TRUE(writer.enabled());
  ASSERT_TRUE(writer.open(std::nullopt).ok());
  EXPECT_FALSE(writer.enabled());
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    AccessLogBuffer buffer(&loop, writer);
    buffer.append(sample());
    buffer.close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
  EXPECT_EQ(readAll(path("a.log")), "");
}

// A reload's prepare opens the new file without switching to it; a
// reload refused later drops it (closed, never written).
TEST_F(AccessLogFiles, AnOpenedDestinationChangesNothingUntilUsed) {
  AccessLogWriter writer;
  ASSERT_TRUE(writer.open(conf::AccessLog{path("old.log")}).ok());
  auto next = AccessLogWriter::openDestination(conf::AccessLog{path("new.log")});
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(std::filesystem::exists(path("new.log")));
  { auto dropped = AccessLogWriter::openDestination(conf::AccessLog{path("dropped.log")}); }
  writer.submit(formatAccessRecord(sample()));
  EXPECT_EQ(waitForLines(path("old.log"), 1), formatAccessRecord(sample()));
  writer.use(std::move(*next));
  writer.submit(formatAccessRecord(sample()));
  EXPECT_EQ(waitForLines(path("new.log"), 1), formatAccessRecord(sample()));
  EXPECT_EQ(readAll(path("old.log")), formatAccessRecord(sample()));
  EXPECT_EQ(readAll(path("dropped.log")), "");
}

}  // namespace
}  // namespace tlsedge::proxy
