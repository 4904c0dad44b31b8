#include "net/http_parser.h"

namespace tlsedge::net {

namespace {

char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  }
  return true;
}

// A valid pointer for empty input: llhttp restarts an open span at the input
// pointer, so it must not be null.
constexpr char kNoInput[1] = {0};

// Static, so llhttp can keep pointing at it after the parser reports it.
constexpr const char* kHandlerThrew = "Exception in HttpParser handler";

HttpParser* owner(llhttp_t* p) { return static_cast<HttpParser*>(p->data); }

// Records the first failure; returns false for the caller to pass on.
bool recordFailure(const char* reason, llhttp_errno_t err, bool& failed, std::string& errorReason) {
  failed = true;
  if (errorReason.empty()) errorReason = reason != nullptr ? reason : llhttp_errno_name(err);
  return false;
}

}  // namespace

const std::string* MessageHead::find(std::string_view name) const {
  for (const Header& h : headers) {
    if (equalsIgnoreCase(h.name, name)) return &h.value;
  }
  return nullptr;
}

HttpParser::HttpParser(Kind kind, Handler& handler) : kind_(kind), handler_(handler) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &HttpParser::onMessageBeginCb;
  settings_.on_url = &HttpParser::onUrlCb;
  settings_.on_status = &HttpParser::onStatusCb;
  settings_.on_header_field = &HttpParser::onHeaderFieldCb;
  settings_.on_header_value = &HttpParser::onHeaderValueCb;
  settings_.on_headers_complete = &HttpParser::onHeadersCompleteCb;
  settings_.on_body = &HttpParser::onBodyCb;
  settings_.on_message_complete = &HttpParser::onMessageCompleteCb;
  // A header name is complete once its field callback series ends; the next
  // on_header_field then starts a new header. Tracking it here (rather than
  // "a value callback was seen") keeps empty values ("X-A:\r\n") from gluing
  // two names together.
  settings_.on_header_field_complete = [](llhttp_t* p) noexcept -> int {
    owner(p)->inValue_ = true;
    return 0;
  };
  // RFC 9110 5.5: a field value excludes surrounding whitespace. llhttp drops
  // the leading OWS; the trailing OWS is trimmed here, once the value is whole.
  settings_.on_header_value_complete = [](llhttp_t* p) noexcept -> int {
    HttpParser* parser = owner(p);
    if ((p->flags & F_TRAILING) != 0 || parser->head_.headers.empty()) return 0;
    std::string& v = parser->head_.headers.back().value;
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
    return 0;
  };
  // No llhttp_set_lenient_*: strict parsing is the point (no smuggling).
  llhttp_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

size_t HttpParser::feed(const char* data, size_t size) {
  if (failed_ || upgraded_ || paused_) return 0;
  // Empty input still runs the steps that need none, e.g. the upgrade that
  // follows a pause in onMessageComplete.
  if (size == 0) data = kNoInput;
  const llhttp_errno_t err = llhttp_execute(&parser_, data, size);
  if (err == HPE_OK) return size;
  const char* pos = llhttp_get_error_pos(&parser_);
  const size_t consumed =
      (pos != nullptr && pos >= data && pos <= data + size) ? static_cast<size_t>(pos - data) : 0;
  switch (err) {
    case HPE_PAUSED:
      return consumed;
    case HPE_PAUSED_UPGRADE:
      // The rest of the stream belongs to the tunnel (RFC 9110 7.8, 9.3.6).
      upgraded_ = true;
      return consumed;
    default:
      recordFailure(llhttp_get_error_reason(&parser_), err, failed_, errorReason_);
      return consumed;
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
      return recordFailure(llhttp_get_error_reason(&parser_), err, failed_, errorReason_);
    }
  }
  paused_ = false;
  if (idle_) return true;
  const llhttp_errno_t err = llhttp_finish(&parser_);
  if (err != HPE_OK && err != HPE_PAUSED) {
    // llhttp_finish() reports through its return value and the reason only.
    return recordFailure(llhttp_get_error_reason(&parser_), err, failed_, errorReason_);
  }
  // llhttp_finish() only completes a close-delimited body (HTTP_FINISH_SAFE_WITH_CB,
  // RFC 9112 6.3 rule 8); anything else mid-message is a truncation.
  if (!idle_)
    return recordFailure("Invalid EOF state", HPE_INVALID_EOF_STATE, failed_, errorReason_);
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
  return 0;
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

int HttpParser::onHeaderFieldCb(llhttp_t* p, const char* at, size_t len) noexcept {
  // Trailer fields (after a chunked body) are dropped: the head has already
  // been delivered and proxying trailers is not supported.
  if ((p->flags & F_TRAILING) != 0) return 0;
  HttpParser* parser = owner(p);
  try {
    std::vector<Header>& headers = parser->head_.headers;
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
  if ((p->flags & F_TRAILING) != 0) return 0;
  HttpParser* parser = owner(p);
  if (parser->head_.headers.empty()) return 0;  // unreachable: llhttp sends a field first
  try {
    parser->head_.headers.back().value.append(at, len);
  } catch (...) {
    llhttp_set_error_reason(p, kHandlerThrew);
    return HPE_USER;
  }
  return 0;
}

int HttpParser::onHeadersCompleteCb(llhttp_t* p) noexcept {
  HttpParser* parser = owner(p);
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
  // RFC 9110 9.3.2: a response to HEAD has no content, whatever its
  // Content-Length or Transfer-Encoding says.
  const bool skipBody = parser->kind_ == Kind::kResponse && parser->requestWasHead_;
  try {
    parser->handler_.onHead(h);
  } catch (...) {
    llhttp_set_error_reason(p, kHandlerThrew);
    return -1;
  }
  if (parser->paused_) {
    // Returning HPE_PAUSED loses the "1 = skip body" answer, so set the flag
    // that answer would have set; llhttp resumes in after_headers_complete.
    if (skipBody) p->flags |= F_SKIPBODY;
    return HPE_PAUSED;
  }
  return skipBody ? 1 : 0;
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

}  // namespace tlsedge::net
