#include "proxy/http2_connection.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/ascii.h"
#include "base/log.h"
#include "http/http_util.h"
#include "http/request_target.h"
#include "proxy/worker.h"

namespace tlsedge::proxy {
namespace {

using Phase = ConnectionTimer::Phase;

// The connection's receive window: several streams whose origin holds them
// back may keep their bytes unconsumed without stalling the others.
constexpr int32_t kConnectionWindow = 1 << 20;
// After the last GOAWAY: what a client still sending may send, and for how
// long, before the close (see flush()).
constexpr size_t kLingerMaxBytes = 1 << 20;
constexpr conf::Duration kLingerTime{std::chrono::seconds(5)};
// drain()'s PING payload: its acknowledgement sends the final GOAWAY.
constexpr uint8_t kDrainPing[8] = {'t', 'l', 's', 'e', 'd', 'r', 'a', 'i'};

std::string_view view(nghttp2_rcbuf* buf) {
  const nghttp2_vec v = nghttp2_rcbuf_get_buf(buf);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

nghttp2_nv field(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

// The fields of a response head in HTTP/2 form: lowercase names, no
// connection-specific fields (RFC 9113 8.2.2), framing as content-length
// only. `storage` backs the names and numbers the fields point into.
class ResponseFields {
 public:
  ResponseFields(int status, const http::MessageHead* origin) {
    status_ = std::to_string(status);
    fields_.push_back(field(":status", status_));
    if (origin == nullptr) {
      fields_.push_back(field("server", "tlsedge"));
      return;
    }
    const auto tokens = http::connectionTokens(*origin);
    names_.reserve(origin->headers.size());
    for (const auto& h : origin->headers) {
      if (http::isHopByHop(h.name, tokens) || http::isFraming(h.name)) continue;
      names_.push_back(ascii::lowered(h.name));
      fields_.push_back(field(names_.back(), h.value));
    }
  }
  void add(std::string_view name, std::string_view value) {
    if (!value.empty()) fields_.push_back(field(name, value));
  }
  // content-length, retry-after: at most kNumbers of them.
  void addNumber(std::string_view name, uint64_t n) {
    std::string& text = numbers_.at(numbersUsed_++);
    text = std::to_string(n);
    fields_.push_back(field(name, text));
  }
  const nghttp2_nv* data() const { return fields_.data(); }
  size_t size() const { return fields_.size(); }
  // The head's size as the access log counts it: "name: value\r\n" per
  // field, before HPACK compresses it.
  size_t textBytes() const {
    size_t n = 0;
    for (const nghttp2_nv& f : fields_) n += f.namelen + f.valuelen + 4;
    return n;
  }

 private:
  static constexpr size_t kNumbers = 2;
  std::string status_;
  std::array<std::string, kNumbers> numbers_;  // addNumber()'s values
  size_t numbersUsed_ = 0;
  std::vector<std::string> names_;  // reserved: fields_ point into it
  std::vector<nghttp2_nv> fields_;
};

}  // namespace

// One stream: the Request it carries, and the response bytes it holds for
// the client (read by nghttp2 as DATA as the windows allow).
class Http2Connection::Stream final : public Downstream {
 public:
  Stream(Http2Connection& c, int32_t i)
      : conn(c), id(i), request(c.worker_, c.generation_, *this, /*tls=*/true) {}

  // Downstream
  void respond(const ResponseHead& head, std::string_view body) override {
    if (!head.bodyless) out.assign(body);
    ended = true;
    submit(head, !head.bodyless && !body.empty());
  }
  void sendHead(const ResponseHead& head) override { submit(head, !head.bodyless); }
  void sendBody(std::string_view data) override {
    if (!hasBody) return;
    if (outOffset > 0) {
      // What nghttp2 has read goes first, so that `out` holds at most
      // kStreamBuffer and one origin read, however long the body.
      out.erase(0, outOffset);
      outOffset = 0;
    }
    out.append(data);
    resume();
  }
  void endResponse(const std::vector<http::Header>& trailers) override {
    ended = true;
    for (const http::Header& h : trailers) {
      if (!http::relayableTrailer(h.name)) continue;
      trailerNames.push_back(ascii::lowered(h.name));
      trailerValues.push_back(h.value);
    }
    resume();
  }
  // At the end of the DATA: the origin's trailers as a HEADERS frame that
  // ends the stream (RFC 9113 8.1), instead of END_STREAM on the DATA.
  bool submitTrailers() {
    if (trailerNames.empty()) return false;
    std::vector<nghttp2_nv> fields;
    size_t bytes = 0;
    for (size_t i = 0; i < trailerNames.size(); ++i) {
      fields.push_back(field(trailerNames[i], trailerValues[i]));
      bytes += trailerNames[i].size() + trailerValues[i].size() + 4;
    }
    // nghttp2 copies the fields.
    if (nghttp2_submit_trailer(conn.session_, id, fields.data(), fields.size()) != 0) return false;
    request.countBytesOut(bytes);
    return true;
  }
  void cutResponse() override {
    nghttp2_submit_rst_stream(conn.session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
    conn.schedule();
  }
  bool sendInterim(const http::MessageHead& head) override {
    ResponseFields fields(head.status, &head);
    nghttp2_submit_headers(conn.session_, NGHTTP2_FLAG_NONE, id, nullptr, fields.data(),
                           fields.size(), nullptr);
    request.countBytesOut(fields.textBytes());
    return true;
  }
  void upgraded(http::MessageHead&, net::Stream* origin, std::string_view) override {
    // Never offered over HTTP/2 (no Upgrade field passes nghttp2's checks).
    origin->close();
    cutResponse();
  }
  void pauseBody() override { paused = true; }
  void resumeBody() override {
    paused = false;
    progressAt =
        uv_now(conn.worker_.loop());  // the client was held back: its countdown starts again
    conn.handBack(id, std::exchange(unconsumed, 0));
    conn.schedule();
  }
  bool writeQueueFull() const override {
    const bool full = out.size() - outOffset > kStreamBuffer || conn.stream_->writeQueueFull();
    wasFull = wasFull || full;  // the origin stops being read: resumeOrigins() restarts it
    return full;
  }
  void settle() override { conn.schedule(); }
  void abandon() override {
    if (request.bodyComplete()) return;
    if (ended) {
      abandoned = true;  // RST_STREAM(NO_ERROR) once the answer is out (RFC 9113 8.1)
    } else {
      nghttp2_submit_rst_stream(conn.session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    }
  }
  bool covers(std::string_view authority) const override { return conn.covers(authority); }
  const std::string& peerIp() const override { return conn.peer_; }
  net::ProxyClient proxyClient() const override { return conn.stream_->proxyClient(); }
  uint64_t connectionId() const override { return conn.owner_.connectionId(); }
  ClientTable::Entry* client() const override { return conn.owner_.client(); }

  void submit(const ResponseHead& head, bool body) {
    ResponseFields fields(head.status, head.origin);
    fields.add("content-type", head.contentType);
    fields.add("location", head.location);
    if (head.contentLength && head.status != 204 && head.status != 304) {
      fields.addNumber("content-length", *head.contentLength);
    }
    fields.add("strict-transport-security", head.hsts);
    if (head.retryAfter != 0) fields.addNumber("retry-after", head.retryAfter);
    hasBody = body;
    nghttp2_data_provider provider;
    provider.source.ptr = this;
    provider.read_callback = &Http2Connection::readBody;
    nghttp2_submit_response(conn.session_, id, fields.data(), fields.size(),
                            body ? &provider : nullptr);
    request.countBytesOut(fields.textBytes());
  }
  void resume() {
    if (!deferred) return;
    deferred = false;
    nghttp2_session_resume_data(conn.session_, id);
  }

  Http2Connection& conn;
  int32_t id;
  Request request;
  // The request head as it arrives.
  http::MessageHead requestHead;
  std::string authority_;  // :authority
  size_t headBytes = 0;
  bool headTooLarge = false;
  // The request body: bytes not yet handed back to the client's window.
  size_t unconsumed = 0;
  bool paused = false;
  // The response body for nghttp2 to read.
  std::string out;
  size_t outOffset = 0;
  bool hasBody = false;
  bool ended = false;            // all of it is in `out`
  bool deferred = false;         // nghttp2 waits for resume()
  mutable bool wasFull = false;  // the origin was held back (writeQueueFull)
  bool abandoned = false;
  bool answered = false;                      // END_STREAM went out
  std::vector<http::Header> requestTrailers;  // the client's, relayed to the origin
  std::vector<std::string> trailerNames;      // the origin's, lower-case, for submitTrailers()
  std::vector<std::string> trailerValues;
  // The request's progress: when it last progressed (the stream began, its
  // head ended, a DATA frame, the origin took body again), whether its head
  // ended, whether a timeout ended it.
  uint64_t progressAt = 0;
  bool headDone = false;
  bool stalled = false;
  // A request the client owes bytes of: not all in, not held back by us,
  // not timed out, not a body that may rightly never come (Expect:
  // 100-continue answered without a 100, as over HTTP/1.1).
  // Nor a body the client cannot send because streams we hold back keep
  // the connection's window shut (a head is not flow-controlled).
  bool due() const {
    return !request.bodyComplete() && !paused && !stalled &&
           !(request.responseStarted() && request.bodyMayNeverCome()) &&
           !(headDone && conn.windowShut());
  }
};

namespace {
Http2Connection* self(void* userData) { return static_cast<Http2Connection*>(userData); }
}  // namespace

Http2Connection::Http2Connection(Worker& worker, const Generation& generation, net::Stream& stream,
                                 Owner& owner)
    : worker_(worker),
      generation_(generation),
      stream_(&stream),
      owner_(owner),
      peer_(stream.peerIp()) {
  if (SSL* ssl = stream.ssl(); ssl != nullptr) {
    if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
      sni_ = ascii::lowered(name);
    }
  }
}

Http2Connection::~Http2Connection() {
  worker_.cancelDeferred(this);
  streams_.clear();
  if (session_ != nullptr) nghttp2_session_del(session_);
}

bool Http2Connection::start() {
  // First: a failure below closes the stream, whose close closes the timer.
  timer_.init(stream_->loop(), this);
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback2(callbacks, &onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &onDataChunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &onFrameSend);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks, &onInvalidFrame);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &onStreamClose);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  // Request bodies are consumed as the origin takes them (resumeBody).
  nghttp2_option_set_no_auto_window_update(option, 1);
  // Closed streams are not kept for the priority tree (RFC 9113 deprecates
  // it): an idle connection holds none.
  nghttp2_option_set_no_closed_streams(option, 1);
  memory_.beginSession();
  const int rv = nghttp2_session_server_new3(&session_, callbacks, this, option, memory_.mem());
  memory_.endSession();
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) {
    log::error("client " + peer_ + ": HTTP/2 session: " + nghttp2_strerror(rv));
    stream_->close();
    return false;
  }
  const conf::Limits& limits = generation_.config->limits;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, static_cast<uint32_t>(limits.http2MaxStreams)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(limits.maxHeaderSize)},
      // No RFC 7540 priority tree (RFC 9218): PRIORITY frames create no
      // idle streams, which nghttp2 would otherwise keep (224 bytes each).
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  ++worker_.stats().http2Connections;
  stream_->startReading();
  flush();
  return true;
}

void Http2Connection::drain() {
  if (closed_ || draining_) return;
  draining_ = true;
  ++worker_.stats().http2Goaways[WorkerStats::kGoawayDrain];
  nghttp2_submit_shutdown_notice(session_);
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, kDrainPing);
  schedule();
}

void Http2Connection::finishDrain() {
  if (finalGoaway_ || closed_) return;
  finalGoaway_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  schedule();
}

void Http2Connection::abort() {
  if (!closed_) stream_->close();
}

Http2Connection::Stream* Http2Connection::find(int32_t id) const {
  const auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

bool Http2Connection::covers(std::string_view authority) const {
  if (sni_.empty()) return true;  // the client named nothing: no claim to check
  const std::string_view host = http::authorityHost(authority);
  if (host.empty() || ascii::equalsIgnoreCase(host, sni_)) return true;
  const certstore::Credentials* served = owner_.servedCertificate();
  if (served == nullptr) return false;
  if (host.front() != '[') return served->covers(std::string(host));
  // An IPv6 literal, in the form of the certificate's iPAddress entries.
  const std::string literal(host.substr(1, host.size() - 2));
  in6_addr address{};
  char text[INET6_ADDRSTRLEN];
  return inet_pton(AF_INET6, literal.c_str(), &address) == 1 &&
         inet_ntop(AF_INET6, &address, text, sizeof text) != nullptr && served->covers(text);
}

// ----------------------------------------------------------------- reading

void Http2Connection::onStreamData(const char* data, size_t size) {
  const ssize_t rv =
      nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), size);
  if (rv < 0) {
    log::debug("client " + peer_ + ": HTTP/2: " + nghttp2_strerror(static_cast<int>(rv)));
    if (rv == NGHTTP2_ERR_CALLBACK_FAILURE || rv == NGHTTP2_ERR_FLOODED) {
      // A flood of frames whose answers it does not read, or an HPACK
      // bomb: nothing more is worth sending to this peer.
      ++worker_.stats().http2Floods;
      stream_->reset();
      return;
    }
    ++worker_.stats().http2Goaways[WorkerStats::kGoawayProtocol];
    flush();  // nghttp2 queued the GOAWAY that says why
    if (!closed_ && !shutDown_) {
      shutDown_ = true;
      stream_->shutdown();
    }
    return;
  }
  schedule();
}

void Http2Connection::onStreamEof() {
  // An HTTP/2 client ends with GOAWAY; one that stops sending can no
  // longer open a window either, so its streams could never finish.
  stream_->close();
}

void Http2Connection::onStreamError(const std::string& reason) {
  log::debug("client " + peer_ + ": " + reason);
}

void Http2Connection::onStreamDrained() { flush(); }

void Http2Connection::onStreamWritten() { updateTimer(Phase::kSend); }

void Http2Connection::onStreamClosed() {
  closed_ = true;
  worker_.cancelDeferred(this);
  // Requests cut by the close are logged with what they got; their
  // exchanges (and origin requests) end with them.
  for (auto& [id, s] : streams_) s->request.end();
  stream_ = nullptr;
  worker_.stats().http2StreamsClosed += streams_.size();
  streams_.clear();
  timer_.close();  // onTimerClosed() tells the owner
}

void Http2Connection::onTimerClosed() { owner_.onHttp2Closed(); }

// ----------------------------------------------------------------- sending

void Http2Connection::schedule() {
  if (!closed_) worker_.defer(this);
}

void Http2Connection::flush() {
  if (flushing_ || closed_ || shutDown_) return;
  flushing_ = true;
  std::string out;
  // What the socket takes before its queue counts as full (onStreamDrained
  // flushes again).
  const size_t budget = stream_->writeQueueFull() ? 0 : net::Stream::kHighWatermark;
  while (out.size() < budget) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      log::debug("client " + peer_ + ": HTTP/2: " + nghttp2_strerror(static_cast<int>(n)));
      flushing_ = false;
      stream_->close();
      return;
    }
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  if (!out.empty()) stream_->write(std::move(out));
  flushing_ = false;
  if (stream_->closing()) return;
  resumeOrigins();
  const bool over =
      nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
  if (over) {
    // Lingering, so that a client still sending reads the GOAWAY rather
    // than a reset (as an HTTP/1.1 connection's last response).
    shutDown_ = true;
    stream_->shutdownLingering(kLingerMaxBytes);
    timer_.enter(Phase::kLinger, kLingerTime, true);
    return;
  }
  updateTimer();
}

void Http2Connection::resumeOrigins() {
  if (closed_ || stream_->writeQueueFull()) return;
  for (auto& [id, s] : streams_) {
    if (s->wasFull && !s->writeQueueFull()) {
      s->wasFull = false;
      s->request.resumeResponse();
    }
  }
}

void Http2Connection::terminate(uint32_t error) {
  nghttp2_session_terminate_session(session_, error);
  flush();
}

void Http2Connection::glitch() {
  const uint64_t now = uv_now(worker_.loop());
  if (now - glitchWindowStart_ > kGlitchWindowMs) {
    glitchWindowStart_ = now;
    glitches_ = 0;
  }
  if (++glitches_ <= kMaxGlitches || calmed_) return;
  calmed_ = true;
  ++worker_.stats().http2Goaways[WorkerStats::kGoawayCalm];
  log::debug("client " + peer_ + ": HTTP/2: " + std::to_string(glitches_) +
             " stream resets and errors in " + std::to_string(kGlitchWindowMs / 1000) +
             " s; GOAWAY ENHANCE_YOUR_CALM");
  // From inside nghttp2's callbacks: the GOAWAY goes out with the next flush.
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
}

// ------------------------------------------------------------------ timers

Phase Http2Connection::currentPhase() const {
  if (stream_->queuedBytes() > 0) return Phase::kSend;
  if (streams_.empty()) return Phase::kIdle;
  // Response bytes a stream holds for a window the client keeps shut are
  // due as much as bytes in the socket's queue.
  bool due = false;
  for (const auto& [id, s] : streams_) {
    if (s->out.size() > s->outOffset) return Phase::kSend;
    due = due || s->due();
  }
  // A stream whose request stalls: its own countdown (progressAt), the
  // timer armed for the first to end.
  return due ? Phase::kBody : Phase::kNone;
}

uint64_t Http2Connection::deadlineOf(const Stream& s) const {
  const conf::Limits& l = generation_.config->limits;
  return s.progressAt +
         static_cast<uint64_t>((s.headDone ? l.bodyTimeout : l.headerTimeout).count());
}

conf::Duration Http2Connection::requestCountdown() const {
  const uint64_t now = uv_now(worker_.loop());
  uint64_t first = UINT64_MAX;
  for (const auto& [id, s] : streams_) {
    if (s->due()) first = std::min(first, deadlineOf(*s));
  }
  return conf::Duration{first > now ? static_cast<int64_t>(first - now) : 0};
}

void Http2Connection::timeOutRequests() {
  const uint64_t now = uv_now(worker_.loop());
  std::vector<Stream*> stalled;
  for (const auto& [id, s] : streams_) {
    if (s->due() && now >= deadlineOf(*s)) stalled.push_back(s.get());
  }
  WorkerStats& stats = worker_.stats();
  for (Stream* s : stalled) {
    s->stalled = true;
    if (!s->headDone) {
      // A header block left unfinished: no other frame may come on the
      // connection until it ends (RFC 9113 6.10), so the connection ends.
      ++stats.headerTimeouts;
      ++stats.requestTimeouts;
      log::debug("client " + peer_ + ": HTTP/2 stream " + std::to_string(s->id) +
                 ": request head timed out, GOAWAY");
      terminate(NGHTTP2_NO_ERROR);
      return;
    }
    ++stats.bodyTimeouts;
    if (!s->request.responseStarted()) ++stats.requestTimeouts;
    log::debug("client " + peer_ + ": HTTP/2 stream " + std::to_string(s->id) +
               ": request body stalled" + (s->request.responseStarted() ? ", reset" : " (408)"));
    // 408, then RST_STREAM(NO_ERROR) once it is out (onFrameSend); or, the
    // answer under way, a reset. Either cancels the origin request.
    s->request.refuse(408, "Request Timeout: the request body stalled\n");
  }
  schedule();
}

void Http2Connection::updateTimer(Phase progress) {
  if (closed_ || shutDown_ || stream_->closing()) return;
  const Phase next = currentPhase();
  const bool restart =
      next == progress || (next == Phase::kBody && std::exchange(countdownsMoved_, false));
  if (next == timer_.phase() && !restart) return;
  const conf::Limits& l = generation_.config->limits;
  conf::Duration timeout{0};
  if (next == Phase::kIdle) timeout = l.keepaliveTimeout;
  if (next == Phase::kBody) timeout = requestCountdown();
  if (next == Phase::kSend) {
    sendMark_ = stream_->bytesSent();
    timeout = l.sendTimeout;
  }
  timer_.enter(next, timeout, true);
}

void Http2Connection::onDeadline(Phase phase) {
  if (closed_) return;
  if (phase == Phase::kLinger) {
    stream_->close();
    return;
  }
  if (stream_->closing()) return;
  if (phase == Phase::kIdle) {
    ++worker_.stats().idleTimeouts;
    ++worker_.stats().http2Goaways[WorkerStats::kGoawayIdle];
    log::debug("client " + peer_ + ": HTTP/2 idle, GOAWAY");
    terminate(NGHTTP2_NO_ERROR);  // flush() shuts down: the session is over
    return;
  }
  if (phase == Phase::kBody) {
    timeOutRequests();
    updateTimer(Phase::kBody);  // the next oldest stream's countdown
    return;
  }
  if (phase == Phase::kSend && stream_->bytesSent() == sendMark_) {
    ++worker_.stats().sendTimeouts;
    log::debug("client " + peer_ + ": took no response bytes for the send timeout, closed");
    stream_->reset();
    return;
  }
  updateTimer();
}

bool Http2Connection::windowShut() const {
  return nghttp2_session_get_local_window_size(session_) <= 0;
}

void Http2Connection::handBack(int32_t id, size_t bytes) {
  if (bytes == 0) return;
  const bool wasShut = windowShut();
  if (id == 0) {
    nghttp2_session_consume_connection(session_, bytes);
  } else {
    nghttp2_session_consume(session_, id, bytes);
  }
  if (!wasShut || windowShut()) return;
  // The client may send bodies again: the countdown of each starts now.
  const uint64_t now = uv_now(worker_.loop());
  for (const auto& [sid, s] : streams_) {
    if (s->headDone) s->progressAt = now;
  }
  countdownsMoved_ = true;
}

void Http2Connection::onIdleTrim() {
  if (closed_) return;
  memory_.trim(nghttp2_session_want_write(session_) == 0);
  stream_->trimBuffers();
  // Back to no bucket array of its own (rehash(0) would allocate two).
  if (streams_.empty()) decltype(streams_)().swap(streams_);
}

// ------------------------------------------------------- nghttp2 callbacks

int Http2Connection::onBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame,
                                    void* user) {
  Http2Connection* c = self(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  // RFC 9218's default urgency, but incremental: streams whose client
  // sends no `priority` field share the connection in turn (as under RFC
  // 7540's equal weights) rather than the oldest going first; one that
  // sends it gets what it asks for.
  const nghttp2_extpri shared{NGHTTP2_EXTPRI_DEFAULT_URGENCY, 1};
  nghttp2_session_change_extpri_stream_priority(session, frame->hd.stream_id, &shared, 0);
  auto stream = std::make_unique<Stream>(*c, frame->hd.stream_id);
  stream->progressAt = uv_now(c->worker_.loop());
  stream->requestHead.versionMajor = 2;
  stream->requestHead.versionMinor = 0;
  c->streams_.emplace(frame->hd.stream_id, std::move(stream));
  c->countdownsMoved_ = true;
  ++c->worker_.stats().http2Streams;
  return 0;
}

int Http2Connection::onHeader(nghttp2_session*, const nghttp2_frame* frame, nghttp2_rcbuf* name,
                              nghttp2_rcbuf* value, uint8_t, void* user) {
  Http2Connection* c = self(user);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  const bool trailer = frame->headers.cat == NGHTTP2_HCAT_HEADERS;
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST && !trailer) return 0;
  Stream* s = c->find(frame->hd.stream_id);
  if (s == nullptr) return 0;
  const std::string_view n = view(name);
  const std::string_view v = view(value);
  const conf::Limits& limits = c->generation_.config->limits;
  // RFC 9113 6.5.2's accounting: 32 bytes per field on top of its bytes.
  s->headBytes += n.size() + v.size() + 32;
  if (s->headBytes > 4 * limits.maxHeaderSize) {
    // Far past what was announced (an HPACK expansion bomb): the connection.
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  if (s->headTooLarge) return 0;
  if (trailer) {
    // Trailers (nghttp2 refused pseudo-headers in them) share the head's
    // budget; past it they are dropped, the request having gone on.
    if (s->headBytes <= limits.maxHeaderSize && s->requestTrailers.size() < limits.maxHeaders) {
      s->requestTrailers.push_back({std::string(n), std::string(v)});
    }
    return 0;
  }
  if (s->headBytes > limits.maxHeaderSize || s->requestHead.headers.size() >= limits.maxHeaders) {
    s->headTooLarge = true;
    return 0;
  }
  http::MessageHead& head = s->requestHead;
  if (n == ":method") {
    head.method = v;
  } else if (n == ":path") {
    head.target = v;
  } else if (n == ":authority") {
    s->authority_ = v;
  } else if (n.starts_with(':')) {
    // :scheme (the connection's TLS decides it), :protocol (refused by nghttp2).
  } else if (n == "cookie") {
    // RFC 9113 8.2.3: one field for HTTP/1.1.
    const std::string* cookie = head.find("cookie");
    if (cookie != nullptr) {
      const_cast<std::string*>(cookie)->append("; ").append(v);
    } else {
      head.headers.push_back({std::string(n), std::string(v)});
    }
  } else {
    head.headers.push_back({std::string(n), std::string(v)});
    if (n == "content-length") {
      uint64_t length = 0;
      std::from_chars(v.data(), v.data() + v.size(), length);  // nghttp2 checked it
      head.contentLength = length;
    }
  }
  return 0;
}

int Http2Connection::onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  Http2Connection* c = self(user);
  const int32_t id = frame->hd.stream_id;
  Stream* s = c->find(id);
  const bool endStream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (s == nullptr) return 0;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        s->headDone = true;
        s->progressAt = uv_now(c->worker_.loop());  // the body's countdown starts
        http::MessageHead& head = s->requestHead;
        // :authority routes as Host does (RFC 9113 8.3.1): it replaces any Host.
        if (!s->authority_.empty()) {
          std::erase_if(head.headers, [](const http::Header& h) {
            return ascii::equalsIgnoreCase(h.name, "host");
          });
          head.headers.push_back({"host", std::move(s->authority_)});
        }
        // A body without content-length reaches the origin chunked.
        head.chunked = !endStream && !head.contentLength;
        if (s->headTooLarge) {
          ++c->worker_.stats().headsTooLarge;
          s->request.refuse(431, "Request Header Fields Too Large\n");
        } else {
          s->request.begin(head);
        }
      }
      if (endStream) s->request.bodyDone(s->requestTrailers);
      return 0;
    case NGHTTP2_DATA:
      if (s != nullptr && endStream) s->request.bodyDone();
      return 0;
    case NGHTTP2_PING:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0 && c->draining_ &&
          std::memcmp(frame->ping.opaque_data, kDrainPing, sizeof(kDrainPing)) == 0) {
        c->finishDrain();
      }
      return 0;
    case NGHTTP2_RST_STREAM:
      ++c->worker_.stats().http2ResetsReceived;
      if (s != nullptr && !s->answered) c->glitch();  // Rapid Reset: cancelled before its answer
      return 0;
    default:
      return 0;
  }
}

int Http2Connection::onDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data,
                                 size_t len, void* user) {
  Http2Connection* c = self(user);
  Stream* s = c->find(id);
  if (s == nullptr) {
    c->handBack(id, len);
    return 0;
  }
  s->progressAt = uv_now(c->worker_.loop());
  s->request.body({reinterpret_cast<const char*>(data), len});
  if (s->paused) {
    s->unconsumed += len;  // handed back by resumeBody(), or at the close
  } else {
    c->handBack(id, len);
  }
  return 0;
}

int Http2Connection::onFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
  Http2Connection* c = self(user);
  if (frame->hd.type == NGHTTP2_RST_STREAM) {
    ++c->worker_.stats().http2ResetsSent;
    if (frame->rst_stream.error_code != NGHTTP2_NO_ERROR &&
        frame->rst_stream.error_code != NGHTTP2_CANCEL) {
      c->glitch();  // a stream error the peer provoked
    }
    return 0;
  }
  if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) return 0;
  if (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) return 0;
  Stream* s = c->find(frame->hd.stream_id);
  if (s == nullptr) return 0;
  s->answered = true;
  if (s->abandoned || !s->request.bodyComplete()) {
    // Answered before the request body ended: the rest is not wanted.
    nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

int Http2Connection::onInvalidFrame(nghttp2_session*, const nghttp2_frame*, int, void* user) {
  self(user)->glitch();
  return 0;
}

int Http2Connection::onStreamClose(nghttp2_session*, int32_t id, uint32_t, void* user) {
  Http2Connection* c = self(user);
  const auto it = c->streams_.find(id);
  if (it == c->streams_.end()) return 0;
  // Ends the request: logged; an exchange still running is dropped, which
  // closes its origin connection (a reset stream cancels the origin request).
  it->second->request.end();
  // Body bytes it held back go back to the connection's window, or every
  // stream cut while its origin stalled would shrink it for good.
  c->handBack(0, std::exchange(it->second->unconsumed, 0));
  c->streams_.erase(it);
  ++c->worker_.stats().http2StreamsClosed;
  return 0;
}

ssize_t Http2Connection::readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                  uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* s = static_cast<Stream*>(source->ptr);
  const size_t available = s->out.size() - s->outOffset;
  const size_t n = std::min(available, length);
  std::memcpy(buf, s->out.data() + s->outOffset, n);
  s->outOffset += n;
  s->request.countBytesOut(n);
  if (s->outOffset == s->out.size()) {
    s->out.clear();
    s->outOffset = 0;
  }
  if (s->out.empty() && s->ended) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->submitTrailers()) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
  } else if (n == 0) {
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

}  // namespace tlsedge::proxy
