// Stream: one TCP connection on a worker loop, optionally wrapped in TLS
// (BoringSSL over memory BIOs, non-blocking), delivering plaintext. An
// accepted Unix socket connection (the admin socket) is a Stream too:
// plaintext only, no PROXY header, and reset() is a plain close.
//
// Thread: the loop that created it; nothing here is thread-safe.
// Ownership: a Stream owns itself. After close() (or a fatal error, which
// closes) the Handler gets onStreamClosed() exactly once, and the Stream is
// deleted right after that call returns: drop every pointer to it there.
// Re-entrancy: handler callbacks may call any method, including close().
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "net/proxy_header.h"

namespace tlsedge::net {

class Stream {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // Outgoing connections: the result of connect (0 or a libuv error). With
    // TLS, 0 comes only once the handshake completed (and the peer's
    // certificate was verified); a failed handshake is reported as an error
    // (onStreamError, onStreamClosed) instead.
    virtual void onStreamConnected(int status) { (void)status; }
    // TLS server streams: the handshake completed. TLS 1.3 session tickets
    // leave before this event returns to the loop, in one write with
    // whatever the handler writes meanwhile (not held for a response).
    virtual void onStreamHandshakeDone() {}
    // Plaintext from the peer (only while reading is started).
    virtual void onStreamData(const char* data, size_t size) = 0;
    // The peer finished sending (TCP FIN or TLS close_notify). Writing may go on.
    virtual void onStreamEof() = 0;
    // The connection failed (reset, TLS error, write error). `reason` is for
    // logs. Delivered from the close callback, right before onStreamClosed,
    // never from inside a call the handler made into the Stream.
    virtual void onStreamError(const std::string& reason) = 0;
    // The write queue fell to or below the low watermark after having been
    // above the high one (see writeQueueFull()).
    virtual void onStreamDrained() {}
    // A write completed (the peer's kernel took it); queuedBytes() is smaller.
    virtual void onStreamWritten() {}
    // Last call; the Stream is deleted when this returns.
    virtual void onStreamClosed() = 0;
    // expectProxyHeader(): the header was read (`header`; peerIp() is its
    // source now), or refused (null, `error` says why; the stream fails
    // with it right after).
    virtual void onStreamProxyHeader(const ProxyHeader* header, const std::string& error) {
      (void)header;
      (void)error;
    }
  };

  // PROXY protocol on an accepted stream (set before the first read):
  // kRequired: its first bytes must be a header (v1 or v2); kRefused: its
  // first bytes must not be one (the peer is not trusted to send it).
  enum class ProxyMode { kNone, kRequired, kRefused };

  static constexpr size_t kHighWatermark = 1 << 20;  // stop feeding above this
  static constexpr size_t kLowWatermark = 256 << 10;

  // Adopts `fd`, an accepted connection (owned from now on) from `peer` (the
  // address accept() gave; AF_UNIX: a Unix socket connection, `ssl` null). `ssl` (may be null:
  // plain TCP) is adopted too and put in server mode. Returns null (both released) on failure.
  static Stream* adopt(uv_loop_t* loop, int fd, const sockaddr* peer, SSL* ssl, Handler* handler);
  // Starts connecting to `addr`; the result arrives via onStreamConnected.
  // `ssl` (may be null: plain TCP) is adopted and put in client mode; its SNI,
  // verification and session are the caller's to set beforehand. Returns
  // null (and the libuv error in *error) if it cannot even start; `ssl` is
  // freed then too. `preamble` (a PROXY header) is sent first, before TLS.
  static Stream* connect(uv_loop_t* loop, const sockaddr* addr, SSL* ssl, Handler* handler,
                         int* error, std::string preamble = {});
  static Stream* connect(uv_loop_t* loop, const sockaddr* addr, Handler* handler, int* error) {
    return connect(loop, addr, nullptr, handler, error);
  }

  void setHandler(Handler* handler) { handler_ = handler; }
  void expectProxyHeader(ProxyMode mode) { proxyMode_ = mode; }
  void startReading();
  void stopReading();
  bool reading() const { return reading_; }

  // Sends plaintext (encrypted first on TLS streams). What the kernel takes
  // at once is written before this returns; only the rest is queued (a
  // queued write completing is what onStreamWritten reports).
  void write(std::string_view data);
  // The same; while corked with nothing held yet, `data` becomes the buffer
  // (no copy, and its spare capacity takes what follows).
  void write(std::string&& data);
  // Output batching: from cork() to uncork(), write() holds the data, and
  // uncork() sends all of it as one piece (one TLS record up to 16 KiB, one
  // write call) - e.g. a response head and the body bytes that came in the
  // same read. Not nested; uncork before returning to the loop. A graceful
  // shutdown uncorks; close() drops what is held. Held bytes are not in
  // queuedBytes() (at most what one event produced).
  void cork() { corked_ = true; }
  void uncork();
  // Bytes queued whose write has not completed.
  size_t queuedBytes() const;
  // Bytes handed to the kernel so far (grows as the peer accepts data, also
  // in the middle of a write): progress for send timeouts.
  uint64_t bytesSent() const;
  bool writeQueueFull() const { return queuedBytes() > kHighWatermark; }
  // Gives back buffers that hold nothing now (the TLS memory BIOs keep
  // their largest size otherwise): for an idle connection.
  void trimBuffers();

  // Loop times (uv_now, ms) for timeouts that are checked lazily: the last
  // bytes received from the peer (ciphertext included), and the last write
  // progress (a write completed, or the queue went from empty to non-empty).
  // Both start at the creation of the stream.
  uint64_t lastReadAt() const { return lastReadAt_; }
  uint64_t lastWriteProgressAt() const { return lastWriteProgressAt_; }

  // Graceful close: TLS close_notify, flush, TCP FIN, then close. After
  // shutdownWrite() it closes once that FIN has gone out.
  void shutdown();
  // Half close: TLS close_notify, flush, TCP FIN; reading goes on and the
  // stream stays open until shutdown() or close(). Nothing more can be written.
  void shutdownWrite();
  // Lingering close (nginx's lingering_close): as shutdown(), but then keep
  // reading and discarding what the peer still sends, and close at its EOF.
  // Closing while the peer is still sending makes the kernel answer with a
  // RST, which can destroy the response before the peer reads it. No data
  // reaches the handler any more; more than `maxDiscard` bytes close at once.
  // The caller bounds the time (close()).
  void shutdownLingering(size_t maxDiscard);
  // Immediate close (pending writes are dropped).
  void close();
  // Immediate close with a TCP RST: the kernel drops what it still holds for
  // the peer instead of trying to deliver it (for peers that stopped
  // reading). A plain close() if a shutdown is under way.
  void reset();
  bool closing() const { return closing_; }

  SSL* ssl() const { return ssl_; }
  bool handshakeDone() const { return handshakeDone_; }
  // Numeric peer address without port ("192.0.2.1", "2001:db8::1"); empty if unknown.
  const std::string& peerIp() const { return peerIp_; }
  // What a PROXY v2 header to an origin says of this (accepted) connection:
  // the client's addresses (a PROXY header's, if one came in), TLS version,
  // cipher, SNI and ALPN.
  ProxyClient proxyClient() const;
  uv_loop_t* loop() const { return handle_.handle.loop; }

 private:
  struct WriteRequest;
  explicit Stream(Handler* handler);
  ~Stream();

  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
  static void onRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) noexcept;
  static void onWritten(uv_write_t* req, int status) noexcept;
  static void onConnect(uv_connect_t* req, int status) noexcept;
  static void onShutdown(uv_shutdown_t* req, int status) noexcept;
  static void onClosed(uv_handle_t* h) noexcept;

  void setUpTls(SSL* ssl);
  void handleCiphertext(const char* data, size_t size);
  void pumpTls();   // handshake + SSL_read loop over buffered ciphertext
  void flushTls();  // moves pending ciphertext from the write BIO to the socket
  void sendTickets();
  void writeNow(std::string_view data);
  void sendRaw(std::string_view data);
  void startShutdown();
  void discard(ssize_t n);
  void fail(const std::string& reason);
  // PROXY mode: takes `data` into proxyBuffer_; true once the header is
  // through (what follows it is left in proxyBuffer_), false while waiting
  // or after a refusal (then the stream failed).
  bool takeProxyBytes(std::string_view data);
  void deliver(const char* data, size_t size);  // plaintext or ciphertext, by mode
  void updatePeer();                            // from the socket (connect())
  void setPeer(const sockaddr* peer);

  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;  // unix_
  } handle_;
  uv_stream_t* uvStream() { return &handle_.stream; }
  uv_handle_t* uvHandle() { return &handle_.handle; }
  bool unix_ = false;  // an accepted Unix socket connection
  Handler* handler_;
  SSL* ssl_ = nullptr;
  BIO* networkOut_ = nullptr;  // SSL writes ciphertext here; we move it to the socket
  BIO* networkIn_ = nullptr;   // ciphertext from the socket for SSL to read
  std::string peerIp_;
  ProxyMode proxyMode_ = ProxyMode::kNone;
  // Accepted streams: bytes read while proxyMode_ is not kNone. Connecting
  // ones: connect()'s preamble, until it is sent.
  std::string proxyBuffer_;
  std::unique_ptr<ProxyHeader> proxyHeader_;  // the one that came in, if any
  size_t queued_ = 0;
  uint64_t lastReadAt_ = 0;
  uint64_t lastWriteProgressAt_ = 0;
  bool client_ = false;     // made by connect(): TLS in client mode, connected after the handshake
  uint64_t sent_ = 0;       // bytes ever given to uv_write
  size_t discardLeft_ = 0;  // lingering: bytes we still read and drop
  bool reading_ = false;
  bool handshakeDone_ = false;
  bool eofSeen_ = false;
  bool aboveHigh_ = false;
  bool closing_ = false;
  bool shutdownStarted_ = false;
  bool shutdownDone_ = false;        // our FIN went out (half closed)
  bool closeAfterShutdown_ = false;  // shutdown(), not just shutdownWrite()
  bool lingering_ = false;           // shutdownLingering(): reads are discarded
  bool ticketsQueued_ = false;       // TLS 1.3 server: tickets BoringSSL holds until a write
  bool pumping_ = false;
  bool pumpAgain_ = false;
  bool corked_ = false;
  bool holdTls_ = false;    // startShutdown(): sealed records wait for the close_notify
  std::string corkBuffer_;  // written while corked
  std::string error_;       // why the stream failed, reported from onClosed
};

}  // namespace tlsedge::net
