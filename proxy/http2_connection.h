// Http2Connection: HTTP/2 (RFC 9113) on a client connection whose TLS
// handshake selected `h2`. libnghttp2 does the frames, HPACK, flow-control
// accounting and the protocol's checks (pseudo-headers, connection-specific
// fields, field bytes, content-length against DATA); each stream carries one
// Request (proxy/request.h), the same as an HTTP/1.1 request.
//
// Flow control is tied to backpressure both ways: a request body's bytes are
// handed back to the client's window (nghttp2_session_consume) only while the
// origin takes them, and a stream whose response bytes the client does not
// take (its window, or the socket) holds at most kStreamBuffer before the
// origin stops being read.
//
// Misbehaving peers: nghttp2 bounds SETTINGS/PING floods (queued ACKs), the
// RST_STREAM rate (Rapid Reset) and CONTINUATION frames per header block.
// On top, every "glitch" (a stream reset by the client before its answer, a
// stream error tlsedge sends, an invalid frame) is counted per connection;
// past kMaxGlitches in a window the connection ends with GOAWAY
// ENHANCE_YOUR_CALM (MadeYouReset, CVE-2025-8671, provokes exactly those).
// A reset stream drops its exchange, so the origin request is cancelled.
//
// Thread: its worker's loop. Ownership: owned by the ClientConnection whose
// handshake chose h2 (it stays the worker's registry entry); becomes the
// stream's handler, and tells its owner once the stream has closed.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "certstore/credentials.h"
#include "net/stream.h"
#include "proxy/connection_timer.h"
#include "proxy/generation.h"
#include "proxy/http2_memory.h"
#include "proxy/request.h"
#include "proxy/worker.h"

namespace tlsedge::proxy {

class Worker;

class Http2Connection final : public net::Stream::Handler,
                              public ConnectionTimer::Owner,
                              public Deferred {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
    // The stream closed and the timer is released: last call; the owner
    // may delete this object.
    virtual void onHttp2Closed() = 0;
    // The client connection's id in the worker (Downstream::connectionId).
    virtual uint64_t connectionId() const = 0;
    // Its per-client limits' entry (Downstream::client).
    virtual ClientTable::Entry* client() const = 0;
    // The certificate its handshake served (null: none).
    virtual const certstore::Credentials* servedCertificate() const = 0;
  };

  // Response bytes a stream holds for a client that does not take them.
  static constexpr size_t kStreamBuffer = 64 << 10;
  // Glitches (see above) allowed per kGlitchWindowMs.
  static constexpr unsigned kMaxGlitches = 100;
  static constexpr uint64_t kGlitchWindowMs = 10'000;

  // Takes over `stream` (TLS, handshake done, ALPN h2).
  Http2Connection(Worker& worker, const Generation& generation, net::Stream& stream, Owner& owner);
  ~Http2Connection() override;
  Http2Connection(const Http2Connection&) = delete;
  Http2Connection& operator=(const Http2Connection&) = delete;

  // Sends the server's SETTINGS and starts reading. False if the session
  // could not be made (then the stream is closed).
  bool start();
  // Graceful shutdown (RFC 9113 6.8): a GOAWAY naming no stream warns the
  // client off new streams, with a PING; its acknowledgement (one round trip,
  // so every stream the client sent before the warning has arrived) sends
  // the final GOAWAY with the last stream taken. Streams in flight finish,
  // new ones go to a new connection; the connection closes after the last.
  void drain();
  // Closes at once.
  void abort();

 private:
  class Stream;
  friend class Stream;

  // net::Stream::Handler
  void onStreamData(const char* data, size_t size) override;
  void onStreamEof() override;
  void onStreamError(const std::string& reason) override;
  void onStreamDrained() override;
  void onStreamWritten() override;
  void onStreamClosed() override;
  // ConnectionTimer::Owner
  void onDeadline(ConnectionTimer::Phase phase) override;
  void onIdleTrim() override;
  void onTimerClosed() override;

  // nghttp2 callbacks (user_data is this).
  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame*, void*);
  static int onHeader(nghttp2_session*, const nghttp2_frame*, nghttp2_rcbuf* name,
                      nghttp2_rcbuf* value, uint8_t flags, void*);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame*, void*);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t id, const uint8_t* data,
                         size_t len, void*);
  static int onFrameSend(nghttp2_session*, const nghttp2_frame*, void*);
  static int onInvalidFrame(nghttp2_session*, const nghttp2_frame*, int error, void*);
  static int onStreamClose(nghttp2_session*, int32_t id, uint32_t error, void*);
  static ssize_t readBody(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void*);

  Stream* find(int32_t id) const;
  // Did the certificate the handshake served cover `authority`'s host?
  bool covers(std::string_view authority) const;
  // Reads the origins of streams that had too much queued, now that they
  // have less.
  void resumeOrigins();
  // One more glitch; past the limit the connection ends (ENHANCE_YOUR_CALM).
  void glitch();
  // Sends what nghttp2 has queued while the socket takes it, then closes if
  // the session is over. Never called from inside a stream's Request.
  void flush();
  // flush() at the end of this loop iteration: what every event of the
  // iteration produced (frames read, origin responses) leaves in one write.
  void schedule();
  void runDeferred() override { flush(); }
  // Ends the connection with GOAWAY `error` (after what is queued).
  void terminate(uint32_t error);
  // drain()'s second GOAWAY, once its PING came back.
  void finishDrain();
  void updateTimer(ConnectionTimer::Phase progress = ConnectionTimer::Phase::kNone);
  ConnectionTimer::Phase currentPhase() const;
  // When a stream's request is due to progress by (uv_now): its head
  // within limits.header_timeout of the stream's start, then each gap in
  // its body within limits.body_timeout.
  uint64_t deadlineOf(const Stream& s) const;
  // kBody: the time left until the first stream's deadline.
  conf::Duration requestCountdown() const;
  // Past its deadline, a stream's body gets 408 (or a reset), and a head
  // left unfinished ends the connection.
  void timeOutRequests();
  // The client may send no DATA: body bytes we hold unconsumed (streams
  // whose origin holds them back) fill the connection's window.
  bool windowShut() const;
  // Hands `bytes` of stream `id`'s request body back to the client's
  // windows (id 0: the connection's alone, for a closed stream). Reopening
  // a shut window starts the body countdowns again.
  void handBack(int32_t id, size_t bytes);

  Worker& worker_;
  const Generation& generation_;
  net::Stream* stream_;
  Owner& owner_;
  std::string peer_;  // the client's address (access log, logs)
  Http2Memory memory_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  ConnectionTimer timer_;
  uint64_t sendMark_ = 0;
  bool flushing_ = false;
  bool draining_ = false;  // the shutdown notice (or a final GOAWAY) sent
  bool finalGoaway_ = false;
  bool calmed_ = false;    // GOAWAY ENHANCE_YOUR_CALM sent
  bool shutDown_ = false;  // stream_->shutdown() was called
  bool closed_ = false;    // the stream closed
  // A stream began, or the window reopened, since the timer was last
  // armed: a deadline may come before the countdown running.
  bool countdownsMoved_ = false;
  unsigned glitches_ = 0;
  uint64_t glitchWindowStart_ = 0;
  std::string sni_;  // the name the handshake served, lowercase; empty: none
};

}  // namespace tlsedge::proxy
