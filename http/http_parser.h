// HTTP/1.1 message parser on llhttp, for requests (client side of the proxy)
// and responses (upstream side).
//
// Push model: feed() bytes as they arrive; the Handler is called for the head,
// each piece of decoded body (chunked framing removed), and the end of each
// message. Strict: llhttp's lenient flags are all off, so Content-Length with
// Transfer-Encoding, differing Content-Lengths, bad characters and bad chunk
// sizes are errors (no request smuggling).
//
// Head limits (setHeadLimits): the bytes of a head (start line to the blank
// line that ends it) and its number of fields are counted as they are parsed,
// so an oversized head fails as soon as it crosses the limit (never buffered
// whole) and fails with its own error kind (a server answers 431, not 400).
// Trailer fields of a chunked body count against the same limits, and are
// kept (trailers()) for the handler to forward.
//
// Thread: owned by one connection on one loop; not thread-safe.
// Lifetime: the Handler must outlive the parser. Handler callbacks may call
// pause(); feed() then returns early with the count of bytes consumed so far.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ascii.h"

namespace tlsedge::http {

using ascii::equalsIgnoreCase;  // header names and tokens

struct Header {
  std::string name;  // as received
  std::string value;
};

struct MessageHead {
  // Requests
  std::string method;  // "GET", ...
  std::string target;  // request-target as received, e.g. "/a?b=c"
  // Responses
  int status = 0;
  std::string reason;
  // Both
  int versionMajor = 1;
  int versionMinor = 1;
  std::vector<Header> headers;
  bool keepAlive = true;  // llhttp_should_keep_alive() at head completion
  bool chunked = false;   // Transfer-Encoding: chunked
  std::optional<uint64_t> contentLength;
  bool upgrade = false;  // Connection: upgrade + Upgrade header (or CONNECT)

  // First value of a header, case-insensitive name match; nullptr if absent.
  const std::string* find(std::string_view name) const;
};

// RFC 9112 6.3: a response with this status, or to a HEAD request, has no
// content whatever its head says (101 is not one: a tunnel follows it).
bool bodylessResponse(int status, bool requestWasHead);

class HttpParser {
 public:
  enum class Kind { kRequest, kResponse };
  enum class Error : uint8_t {
    kNone,
    kMalformed,       // not valid HTTP/1.1 (or a handler threw)
    kHeadTooLarge,    // the head (or the trailers) over maxHeadBytes
    kTooManyHeaders,  // more header (or trailer) fields than maxHeaders
  };

  class Handler {
   public:
    virtual ~Handler() = default;
    // The whole head has been parsed. `head` may be moved from.
    virtual void onHead(MessageHead& head) = 0;
    // A piece of decoded body.
    virtual void onBody(std::string_view data) = 0;
    // The message is complete (after the last body byte, or at once for
    // bodiless messages); a chunked body's trailer fields are in trailers().
    virtual void onMessageComplete() = 0;
  };

  HttpParser(Kind kind, Handler& handler);
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  // Parses up to `size` bytes. Returns the number consumed: all of them,
  // unless a callback paused the parser (the rest must be fed again after
  // resume()) or an error occurred (failed() is then true). After an upgrade
  // (101 or CONNECT) parsing stops and the remaining bytes belong to the
  // tunnel: consumed < size, upgraded() true.
  size_t feed(const char* data, size_t size);

  // The peer closed. For a response delimited by connection close this
  // completes the message (onMessageComplete). Returns false if the peer
  // closed in the middle of a message that had a length (truncated).
  bool finish();

  void pause();  // from a Handler callback: stop after the current callback
  void resume();
  bool paused() const { return paused_; }

  // Responses: the request was HEAD (no body follows whatever the headers say).
  void setRequestWasHead(bool head) { requestWasHead_ = head; }

  // 0: no limit (the default). Applies from the next byte fed.
  void setHeadLimits(size_t maxHeadBytes, size_t maxHeaders) {
    maxHeadBytes_ = maxHeadBytes;
    maxHeaders_ = maxHeaders;
  }

  bool failed() const { return failed_; }
  Error error() const { return error_; }
  bool upgraded() const { return upgraded_; }
  // llhttp's reason for the failure, e.g. "Invalid header value char".
  const std::string& errorReason() const { return errorReason_; }
  // Between messages (nothing of a next message parsed yet).
  bool idle() const { return idle_; }
  // Part of a head has been parsed, not all of it.
  bool inHead() const { return inHead_; }
  // The trailer fields of the last chunked body, as received (until the
  // next message begins; the handler may move from them).
  std::vector<Header>& trailers() { return trailers_; }

 private:
  // ... llhttp callbacks and accumulated head state; see http_parser.cc.
  static int onMessageBeginCb(llhttp_t* p) noexcept;
  static int onUrlCb(llhttp_t* p, const char* at, size_t len) noexcept;
  static int onStatusCb(llhttp_t* p, const char* at, size_t len) noexcept;
  static int onHeaderFieldCb(llhttp_t* p, const char* at, size_t len) noexcept;
  static int onHeaderValueCb(llhttp_t* p, const char* at, size_t len) noexcept;
  static int onHeadersCompleteCb(llhttp_t* p) noexcept;
  static int onBodyCb(llhttp_t* p, const char* at, size_t len) noexcept;
  static int onMessageCompleteCb(llhttp_t* p) noexcept;
  static int onHeaderFieldCompleteCb(llhttp_t* p) noexcept;
  static int onHeaderValueCompleteCb(llhttp_t* p) noexcept;
  static const llhttp_settings_t& settings();

  // Where llhttp stopped on its own account (not the handler's pause).
  enum class Stop : uint8_t { kNone, kMessageBegin, kHeadComplete };

  bool countHead(size_t bytes);
  int countTrailer(llhttp_t* p, size_t len);
  std::vector<Header>& fieldsOf(llhttp_t* p);
  bool deliverHead();
  int fail(llhttp_t* p, Error error, const char* reason);
  void recordFailure(Error error, const char* reason, llhttp_errno_t err);

  Kind kind_;
  Handler& handler_;
  llhttp_t parser_;
  MessageHead head_;
  std::vector<Header> trailers_;
  size_t maxHeadBytes_ = 0;  // 0: none
  size_t maxHeaders_ = 0;    // 0: none
  size_t headBytes_ = 0;     // of the head in progress, consumed so far
  size_t trailerBytes_ = 0;
  size_t trailerFields_ = 0;
  Stop stop_ = Stop::kNone;
  Error error_ = Error::kNone;
  bool inValue_ = false;
  bool inHead_ = false;
  bool paused_ = false;
  bool failed_ = false;
  bool upgraded_ = false;
  bool idle_ = true;
  bool requestWasHead_ = false;
  std::string errorReason_;
};

}  // namespace tlsedge::http
