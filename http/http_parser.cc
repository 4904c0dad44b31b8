#include "http/http_parser.h"

#include <algorithm>

namespace tlsedge::http {

namespace {

// A valid pointer for empty input: llhttp restarts an open span at the input
// pointer, so it must not be null.
constexpr char kNoInput[1] = {0};

// Static, so llhttp can keep pointing at them after the parser reports them.
constexpr const char* kHandlerThrew = "Exception in HttpParser handler";
constexpr const char* kRequestHeadTooLarge = "Request head too large";
constexpr const char* kResponseHeadTooLarge = "Response head too large";
constexpr const char* kTooManyHeaderFields = "Too many header fields";
constexpr const char* kTrailersTooLarge = "Trailer fields too large";
constexpr const char* kInvalidTransferEncoding = "Request has invalid `Transfer-Encoding`";

HttpParser* owner(llhttp_t* p) { return static_cast<HttpParser*>(p->data); }

}  // namespace

bool bodylessResponse(int status, bool requestWasHead) {
  return requestWasHead || (status >= 100 && status < 200 && status != 101) || status == 204 ||
         status == 304;
}

const std::string* MessageHead::find(std::string_view name) const {
  for (const Header& h : headers) {
    if (equalsIgnoreCase(h.name, name)) return &h.value;
  }
  return nullptr;
}

const llhttp_settings_t& HttpParser::settings() {
  // The same for every parser: one copy per process instead of one per
  // connection (llhttp keeps a pointer to it).
  static const llhttp_settings_t kSettings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = &HttpParser::onMessageBeginCb;
    s.on_url = &HttpParser::onUrlCb;
    s.on_status = &HttpParser::onStatusCb;
    s.on_header_field = &HttpParser::onHeaderFieldCb;
    s.on_header_value = &HttpParser::onHeaderValueCb;
    s.on_headers_complete = &HttpParser::onHeadersCompleteCb;
    s.on_body = &HttpParser::onBodyCb;
    s.on_message_complete = &HttpParser::onMessageCompleteCb;
    s.on_header_field_complete = &HttpParser::onHeaderFieldCompleteCb;
    s.on_header_value_complete = &HttpParser::onHeaderValueCompleteCb;
    return s;
  }();
  return kSettings;
}

HttpParser::HttpParser(Kind kind, Handler& handler) : kind_(kind), handler_(handler) {
  // No llhttp_set_lenient_*: strict parsing is the point (no smuggling).
  llhttp_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &settings());
  parser_.data = this;
}

void HttpParser::recordFailure(Error error, const char* reason, llhttp_errno_t err) {
  failed_ = true;
  if (error_ == Error::kNone) error_ = error;
  if (errorReason_.empty()) errorReason_ = reason != nullptr ? reason : llhttp_errno_name(err);
}

// From a callback: fail with our own kind and reason (llhttp replaces the
// reason of some callbacks' errors with its own).
int HttpParser::fail(llhttp_t* p, Error error, const char* reason) {
  error_ = error;
  errorReason_ = reason;
  llhttp_set_error_reason(p, reason);
  return HPE_USER;
}

// Counts `bytes` more of the head in progress; false (failed) beyond the limit.
bool HttpParser::countHead(size_t bytes) {
  headBytes_ += bytes;
  if (maxHeadBytes_ == 0 || headBytes_ <= maxHeadBytes_) return true;
  recordFailure(Error::kHeadTooLarge,
                kind_ == Kind::kRequest ? kRequestHeadTooLarge : kResponseHeadTooLarge, HPE_USER);
  return false;
}

// The head is whole and within the limits: hand it over. False if the
// handler threw (the parser has failed).
bool HttpParser::deliverHead() {
  try {
    handler_.onHead(head_);
  } catch (...) {
    recordFailure(Error::kMalformed, kHandlerThrew, HPE_USER);
    return false;
  }
  return true;
}

size_t HttpParser::feed(const char* data, size_t size) {
  if (failed_ || upgraded_ || paused_) return 0;
  // Empty input still runs the steps that need none, e.g. the upgrade that
  // follows a pause in onMessageComplete.
  if (size == 0) data = kNoInput;
  size_t off = 0;
  // Each pass runs llhttp until the input ends, a callback stops it, or it
  // fails. llhttp stops by itself where a head begins and where it ends
  // (onMessageBeginCb, onHeadersCompleteCb), so that the head's bytes are
  // counted exactly and checked before the handler sees the head.
  for (;;) {
    const char* chunk = data + off;
    size_t len = size - off;
    // Inside a head, parse at most one byte past its limit: an oversized
    // head fails where it crosses the limit, never buffered whole.
    if (inHead_ && maxHeadBytes_ != 0) len = std::min(len, maxHeadBytes_ - headBytes_ + 1);
    const llhttp_errno_t err = llhttp_execute(&parser_, chunk, len);
    if (err == HPE_OK) {
      off += len;
      if (inHead_ && !countHead(len)) return off;
      if (off == size) return size;
      continue;
    }
    const char* pos = llhttp_get_error_pos(&parser_);
    const size_t used = (pos != nullptr && pos >= chunk && pos <= chunk + len)
                            ? static_cast<size_t>(pos - chunk)
                            : 0;
    off += used;
    if (err == HPE_PAUSED && stop_ != Stop::kNone) {
      const Stop stop = stop_;
      stop_ = Stop::kNone;
      if (stop == Stop::kMessageBegin) {
        inHead_ = true;  // the head starts at `pos`
        headBytes_ = 0;
      } else {
        inHead_ = false;
        if (!countHead(used) || !deliverHead()) return off;
        if (paused_) return off;  // the handler paused in onHead
      }
      llhttp_resume(&parser_);
      // Loop even at the end of the input: steps that need no input (the end
      // of a bodiless message) run now, not with the next bytes.
      continue;
    }
    switch (err) {
      case HPE_PAUSED:
        return off;
      case HPE_PAUSED_UPGRADE:
        // The rest of the stream belongs to the tunnel (RFC 9110 7.8, 9.3.6).
        upgraded_ = true;
        return off;
      default:
        recordFailure(Error::kMalformed, llhttp_get_error_reason(&parser_), err);
        return off;
    }
  }
}

bool HttpParser::finish() {
  if (failed_) return false;
  if (upgraded_) return true;
  // The peer is gone and nothing more will be fed, so a pause no longer
  // matters: run the steps llhttp left pending (they need no input; e.g. a
  // pause in onHead stops before llhttp has chosen how the body is framed).
  // llhttp_finish() itself does nothing while paused.
  for (int i = 0; i < 4 && llhttp_get_errno(&parser_) == HPE_PAUSED; ++i) {
    llhttp_resume(&parser_);
    paused_ = false;
    const llhttp_errno_t err = llhttp_execute(&parser_, kNoInput, 0);
    if (err == HPE_PAUSED_UPGRADE) {
      upgraded_ = true;
      return true;
    }
    if (err != HPE_OK && err != HPE_PAUSED) {
      recordFailure(Error::kMalformed, llhttp_get_error_reason(&parser_), err);
      return false;
    }
  }
  paused_ = false;
  if (idle_) return true;
  const llhttp_errno_t err = llhttp_finish(&parser_);
  if (err != HPE_OK && err != HPE_PAUSED) {
    // llhttp_finish() reports through its return value and the reason only.
    recordFailure(Error::kMalformed, llhttp_get_error_reason(&parser_), err);
    return false;
  }
  // llhttp_finish() only completes a close-delimited body (HTTP_FINISH_SAFE_WITH_CB,
  // RFC 9112 6.3 rule 8); anything else mid-message is a truncation.
  if (!idle_) {
    recordFailure(Error::kMalformed, "Invalid EOF state", HPE_INVALID_EOF_STATE);
    return false;
  }
  return true;
}

void HttpParser::pause() { paused_ = true; }

void HttpParser::resume() {
  paused_ = false;
  llhttp_resume(&parser_);
}

int HttpParser::onMessageBeginCb(llhttp_t* p) noexcept {
  HttpParser* parser = owner(p);
  parser->idle_ = false;
  parser->inValue_ = false;
  parser->trailerBytes_ = 0;
  parser->trailerFields_ = 0;
  parser->trailers_.clear();
  // clear() rather than a fresh MessageHead: keeps capacity across a
  // keep-alive connection (and gives moved-from members a defined state).
  MessageHead& h = parser->head_;
  h.method.clear();
  h.target.clear();
  h.status = 0;
  h.reason.clear();
  h.versionMajor = 1;
  h.versionMinor = 1;
  h.headers.clear();
  h.keepAlive = true;
  h.chunked = false;
  h.contentLength.reset();
  h.upgrade = false;
  // Stop here so that feed() knows where the head starts (see feed()).
  parser->stop_ = Stop::kMessageBegin;
  return HPE_PAUSED;
}

int HttpParser::onUrlCb(llhttp_t* p, const char* at, size_t len) noexcept {
  try {
    owner(p)->head_.target.append(at, len);
  } catch (...) {
    llhttp_set_error_reason(p, kHandlerThrew);
    return HPE_USER;
  }
  return 0;
}

int HttpParser::onStatusCb(llhttp_t* p, const char* at, size_t len) noexcept {
  try {
    owner(p)->head_.reason.append(at, len);
  } catch (...) {
    llhttp_set_error_reason(p, kHandlerThrew);
    return HPE_USER;
  }
  return 0;
}

// The fields being parsed: the head's, or after a chunked body the trailers
// (kept for trailers(), counted against the head limits by countTrailer).
std::vector<Header>& HttpParser::fieldsOf(llhttp_t* p) {
  return (p->flags & F_TRAILING) != 0 ? trailers_ : head_.headers;
}

int HttpParser::onHeaderFieldCb(llhttp_t* p, const char* at, size_t len) noexcept {
  HttpParser* parser = owner(p);
  if ((p->flags & F_TRAILING) != 0) {
    if (int rc = parser->countTrailer(p, len); rc != 0) return rc;
  }
  try {
    std::vector<Header>& headers = parser->fieldsOf(p);
    if (parser->inValue_ || headers.empty()) {
      headers.emplace_back();
      parser->inValue_ = false;
    }
    headers.back().name.append(at, len);
  } catch (...) {
    llhttp_set_error_reason(p, kHandlerThrew);
    return HPE_USER;
  }
  return 0;
}

int HttpParser::onHeaderValueCb(llhttp_t* p, const char* at, size_t len) noexcept {
  HttpParser* parser = owner(p);
  if ((p->flags & F_TRAILING) != 0) {
    if (int rc = parser->countTrailer(p, len); rc != 0) return rc;
  }
  std::vector<Header>& headers = parser->fieldsOf(p);
  if (headers.empty()) return 0;  // unreachable: llhttp sends a field first
  try {
    headers.back().value.append(at, len);
  } catch (...) {
    llhttp_set_error_reason(p, kHandlerThrew);
    return HPE_USER;
  }
  return 0;
}

// A header name is complete once its field callback series ends; the next
// on_header_field then starts a new header. Tracking it here (rather than "a
// value callback was seen") keeps empty values ("X-A:\r\n") from gluing two
// names together.
int HttpParser::onHeaderFieldCompleteCb(llhttp_t* p) noexcept {
  HttpParser* parser = owner(p);
  parser->inValue_ = true;
  if (parser->maxHeaders_ == 0) return 0;
  const size_t fields =
      (p->flags & F_TRAILING) != 0 ? ++parser->trailerFields_ : parser->head_.headers.size();
  if (fields > parser->maxHeaders_) {
    return parser->fail(p, Error::kTooManyHeaders, kTooManyHeaderFields);
  }
  return 0;
}

// RFC 9110 5.5: a field value excludes surrounding whitespace. llhttp drops
// the leading OWS; the trailing OWS is trimmed here, once the value is whole.
int HttpParser::onHeaderValueCompleteCb(llhttp_t* p) noexcept {
  HttpParser* parser = owner(p);
  std::vector<Header>& headers = parser->fieldsOf(p);
  if (headers.empty()) return 0;
  std::string& v = headers.back().value;
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
  return 0;
}

// Trailers are not parsed through feed()'s head accounting; their name and
// value bytes are counted here (separators aside) against the head limit.
int HttpParser::countTrailer(llhttp_t* p, size_t len) {
  trailerBytes_ += len;
  if (maxHeadBytes_ != 0 && trailerBytes_ > maxHeadBytes_) {
    return fail(p, Error::kHeadTooLarge, kTrailersTooLarge);
  }
  return 0;
}

int HttpParser::onHeadersCompleteCb(llhttp_t* p) noexcept {
  HttpParser* parser = owner(p);
  // llhttp refuses a request whose Transfer-Encoding does not end in chunked
  // (RFC 9112 6.3) only after this callback (in after_headers_complete):
  // refuse it here, so that a handler never acts on (proxies) such a head.
  const bool hasBody = (p->flags & F_CHUNKED) != 0 || p->content_length > 0;
  const bool tunnel = p->upgrade != 0 && (p->method == HTTP_CONNECT || !hasBody);
  if (parser->kind_ == Kind::kRequest && !tunnel && (p->flags & F_TRANSFER_ENCODING) != 0 &&
      (p->flags & F_CHUNKED) == 0) {
    return parser->fail(p, Error::kMalformed, kInvalidTransferEncoding);
  }
  MessageHead& h = parser->head_;
  h.versionMajor = p->http_major;
  h.versionMinor = p->http_minor;
  if (parser->kind_ == Kind::kRequest) {
    try {
      h.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    } catch (...) {
      llhttp_set_error_reason(p, kHandlerThrew);
      return -1;
    }
  } else {
    h.status = p->status_code;
  }
  h.keepAlive = llhttp_should_keep_alive(p) != 0;
  h.chunked = (p->flags & F_CHUNKED) != 0;
  if ((p->flags & F_CONTENT_LENGTH) != 0) h.contentLength = p->content_length;
  h.upgrade = p->upgrade != 0;
  // RFC 9112 6.3: a response to HEAD, a 1xx (101 aside: a tunnel follows),
  // a 204 and a 304 have no content, whatever their Content-Length or
  // Transfer-Encoding says. (llhttp knows 100, 102, 103, 204 and 304 itself;
  // not other 1xx codes.) Returning HPE_PAUSED loses the "1 = skip body"
  // answer, so set the flag that answer would have set; llhttp resumes in
  // after_headers_complete.
  if (parser->kind_ == Kind::kResponse &&
      bodylessResponse(p->status_code, parser->requestWasHead_)) {
    p->flags |= F_SKIPBODY;
  }
  // Stop here: feed() checks the head's size, then hands it to the handler.
  parser->stop_ = Stop::kHeadComplete;
  return HPE_PAUSED;
}

int HttpParser::onBodyCb(llhttp_t* p, const char* at, size_t len) noexcept {
  HttpParser* parser = owner(p);
  if (len == 0) return 0;  // an empty span flushed by an empty feed()
  try {
    parser->handler_.onBody(std::string_view(at, len));
  } catch (...) {
    llhttp_set_error_reason(p, kHandlerThrew);
    return HPE_USER;
  }
  return parser->paused_ ? HPE_PAUSED : 0;
}

int HttpParser::onMessageCompleteCb(llhttp_t* p) noexcept {
  HttpParser* parser = owner(p);
  parser->idle_ = true;
  try {
    parser->handler_.onMessageComplete();
  } catch (...) {
    llhttp_set_error_reason(p, kHandlerThrew);
    return -1;
  }
  return parser->paused_ ? HPE_PAUSED : 0;
}

}  // namespace tlsedge::http
