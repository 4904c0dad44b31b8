// Shared by the HTTP/1.1 targets: feeds http::HttpParser the way a
// connection does (one message at a time: pause at each message's end,
// resume, feed the rest) and records what it reported, so that a target
// can compare the input fed whole with the same bytes fed in pieces.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "http/http_parser.h"

namespace tlsedge::fuzz {

struct Message {
  http::MessageHead head;
  std::string body;
  bool complete = false;
};

struct Transcript {
  std::vector<Message> messages;
  bool failed = false;
  http::HttpParser::Error error = http::HttpParser::Error::kNone;
  bool upgraded = false;
  bool finished = false;  // finish() at the end said the stream ended cleanly
};

class Recorder : public http::HttpParser::Handler {
 public:
  explicit Recorder(Transcript& out) : out_(out) {}
  void onHead(http::MessageHead& head) override { out_.messages.push_back({head, {}, false}); }
  void onBody(std::string_view data) override {
    FUZZ_CHECK(!out_.messages.empty() && !out_.messages.back().complete);
    out_.messages.back().body.append(data);
  }
  void onMessageComplete() override {
    FUZZ_CHECK(!out_.messages.empty() && !out_.messages.back().complete);
    out_.messages.back().complete = true;
    parser->pause();  // one message at a time, as ClientConnection and AdminServer
  }
  http::HttpParser* parser = nullptr;

 private:
  Transcript& out_;
};

struct ParseOptions {
  http::HttpParser::Kind kind = http::HttpParser::Kind::kRequest;
  size_t maxHeadBytes = 0;
  size_t maxHeaders = 0;
  bool requestWasHead = false;
  bool finish = false;  // the peer closes after the last byte
};

// Feeds `data` in pieces of at most `piece` bytes (0: whole).
inline Transcript parse(std::string_view data, size_t piece, const ParseOptions& options) {
  Transcript t;
  Recorder recorder(t);
  http::HttpParser parser(options.kind, recorder);
  recorder.parser = &parser;
  parser.setHeadLimits(options.maxHeadBytes, options.maxHeaders);
  parser.setRequestWasHead(options.requestWasHead);
  size_t off = 0;
  while (off < data.size() && !parser.failed() && !parser.upgraded()) {
    const size_t len = piece == 0 ? data.size() - off : std::min(piece, data.size() - off);
    const size_t used = parser.feed(data.data() + off, len);
    FUZZ_CHECK(used <= len);
    off += used;
    if (parser.paused()) {
      parser.resume();
    } else if (used < len) {
      FUZZ_CHECK(parser.failed() || parser.upgraded());
    }
  }
  if (parser.paused()) parser.resume();
  if (!parser.failed() && !parser.upgraded()) parser.feed(data.data() + off, 0);
  if (options.finish) t.finished = parser.finish();
  t.failed = parser.failed();
  t.error = parser.error();
  t.upgraded = parser.upgraded();
  if (t.failed) FUZZ_CHECK(!parser.errorReason().empty());
  return t;
}

inline bool sameHead(const http::MessageHead& a, const http::MessageHead& b) {
  if (a.method != b.method || a.target != b.target || a.status != b.status ||
      a.reason != b.reason || a.versionMajor != b.versionMajor ||
      a.versionMinor != b.versionMinor || a.keepAlive != b.keepAlive || a.chunked != b.chunked ||
      a.contentLength != b.contentLength || a.upgrade != b.upgrade ||
      a.headers.size() != b.headers.size()) {
    return false;
  }
  for (size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) {
      return false;
    }
  }
  return true;
}

// Fed whole or in pieces, the parser must report the same.
inline void checkSame(const Transcript& a, const Transcript& b) {
  FUZZ_CHECK(a.failed == b.failed && a.error == b.error && a.upgraded == b.upgraded);
  FUZZ_CHECK(a.finished == b.finished);
  FUZZ_CHECK(a.messages.size() == b.messages.size());
  for (size_t i = 0; i < a.messages.size(); ++i) {
    FUZZ_CHECK(sameHead(a.messages[i].head, b.messages[i].head));
    FUZZ_CHECK(a.messages[i].body == b.messages[i].body);
    FUZZ_CHECK(a.messages[i].complete == b.messages[i].complete);
  }
}

// What holds for every message of a transcript: strict framing (never both
// Content-Length and chunked), no body where none may be, and a complete
// body of the declared length.
inline void checkFraming(const Transcript& t, const ParseOptions& options) {
  for (const Message& m : t.messages) {
    FUZZ_CHECK(!(m.head.chunked && m.head.contentLength));
    const bool response = options.kind == http::HttpParser::Kind::kResponse;
    if (response && http::bodylessResponse(m.head.status, options.requestWasHead)) {
      FUZZ_CHECK(m.body.empty());
      continue;
    }
    if (m.head.contentLength) FUZZ_CHECK(m.body.size() <= *m.head.contentLength);
    if (m.complete && m.head.contentLength && !m.head.upgrade) {
      FUZZ_CHECK(m.body.size() == *m.head.contentLength);
    }
  }
}

}  // namespace tlsedge::fuzz
