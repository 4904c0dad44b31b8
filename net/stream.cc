#include "net/stream.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <unistd.h>

#include "base/log.h"
#include "net/loop.h"
#include "net/tls.h"

namespace tlsedge::net {
namespace {
// One read buffer per worker thread: libuv calls alloc and read back to back
// on the loop's thread, so a connection never needs a buffer of its own while
// idle (memory per idle connection is what an edge has most of).
thread_local char tReadBuffer[64 * 1024];
thread_local char tPlainBuffer[16 * 1024];

// Why a handshake failed. A client that refused the peer's certificate says
// why in X.509 terms ("certificate verify failed: Hostname mismatch") rather
// than as BoringSSL's bare CERTIFICATE_VERIFY_FAILED.
std::string handshakeFailure(SSL* ssl) {
  uint32_t code = ERR_peek_last_error();
  if (!SSL_is_server(ssl) && ERR_GET_LIB(code) == ERR_LIB_SSL &&
      ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long result = SSL_get_verify_result(ssl);
    if (result != X509_V_OK) {
      ERR_clear_error();
      return std::string("certificate verify failed: ") + X509_verify_cert_error_string(result);
    }
  }
  return drainSslErrors();
}
}  // namespace

struct Stream::WriteRequest {
  uv_write_t req;
  std::string data;
  Stream* stream;
};

Stream::Stream(Handler* handler) : handler_(handler) {}

Stream::~Stream() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // frees both BIOs
}

Stream* Stream::adopt(uv_loop_t* loop, int fd, const sockaddr* peer, SSL* ssl, Handler* handler) {
  auto* s = new Stream(handler);
  s->unix_ = peer != nullptr && peer->sa_family == AF_UNIX;
  int rc = 0;
  if (s->unix_) {
    uv_pipe_init(loop, &s->handle_.pipe, 0);
    rc = uv_pipe_open(&s->handle_.pipe, fd);
  } else {
    uv_tcp_init(loop, &s->handle_.tcp);
    rc = uv_tcp_open(&s->handle_.tcp, fd);
  }
  s->handle_.handle.data = s;
  if (rc != 0 || (s->unix_ && ssl != nullptr)) {
    if (rc != 0) ::close(fd);  // else the handle owns it
    if (ssl != nullptr) SSL_free(ssl);
    s->handler_ = nullptr;
    s->closing_ = true;
    uv_close(s->uvHandle(), &Stream::onClosed);
    return nullptr;
  }
  // TCP_NODELAY comes from the listening socket (see Acceptor::start).
  s->lastReadAt_ = s->lastWriteProgressAt_ = uv_now(loop);
  s->setPeer(peer);
  if (ssl != nullptr) {
    s->setUpTls(ssl);
    SSL_set_accept_state(ssl);
  }
  return s;
}

void Stream::setUpTls(SSL* ssl) {
  ssl_ = ssl;
  networkIn_ = BIO_new(BIO_s_mem());
  networkOut_ = BIO_new(BIO_s_mem());
  // An empty input BIO means "no bytes yet", not end of stream.
  BIO_set_mem_eof_return(networkIn_, -1);
  SSL_set_bio(ssl, networkIn_, networkOut_);
}

Stream* Stream::connect(uv_loop_t* loop, const sockaddr* addr, SSL* ssl, Handler* handler,
                        int* error, std::string preamble) {
  auto* s = new Stream(handler);
  s->client_ = true;
  s->proxyBuffer_ = std::move(preamble);
  uv_tcp_init(loop, &s->handle_.tcp);
  s->handle_.handle.data = s;
  uv_tcp_nodelay(&s->handle_.tcp, 1);
  s->lastReadAt_ = s->lastWriteProgressAt_ = uv_now(loop);
  if (ssl != nullptr) {
    s->setUpTls(ssl);  // owned from here: freed with the stream whatever happens
    SSL_set_connect_state(ssl);
  }
  auto* req = new uv_connect_t;
  req->data = s;
  int rc = uv_tcp_connect(req, &s->handle_.tcp, addr, &Stream::onConnect);
  if (rc != 0) {
    delete req;
    *error = rc;
    s->handler_ = nullptr;  // the caller hears of it from the return value only
    s->close();
    return nullptr;
  }
  return s;
}

void Stream::updatePeer() {
  sockaddr_storage ss{};
  int len = sizeof(ss);
  if (uv_tcp_getpeername(&handle_.tcp, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
  setPeer(reinterpret_cast<const sockaddr*>(&ss));
}

void Stream::setPeer(const sockaddr* peer) { peerIp_ = formatIp(peer); }

void Stream::onConnect(uv_connect_t* req, int status) noexcept {
  auto* s = static_cast<Stream*>(req->data);
  delete req;
  if (s->closing_) return;
  if (status != 0) {
    s->handler_->onStreamConnected(status);
    return;
  }
  s->updatePeer();
  if (!s->proxyBuffer_.empty()) {
    s->sendRaw(s->proxyBuffer_);
    s->proxyBuffer_ = std::string();
  }
  if (s->ssl_ == nullptr) {
    s->handler_->onStreamConnected(0);
    return;
  }
  // TLS: connected for the handler once the handshake is done. A client
  // stream reads from here on (the handshake needs it).
  s->startReading();
  s->pumpTls();  // sends the ClientHello
}

void Stream::startReading() {
  if (closing_ || reading_ || lingering_) return;
  reading_ = true;
  if (!eofSeen_) {
    uv_read_start(uvStream(), &Stream::onAlloc, &Stream::onRead);
  }
  // Plaintext may already sit decrypted-but-undelivered inside SSL.
  if (ssl_ != nullptr && handshakeDone_) pumpTls();
}

void Stream::stopReading() {
  if (!reading_ || lingering_) return;
  reading_ = false;
  if (!closing_) uv_read_stop(uvStream());
}

void Stream::onAlloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
  buf->base = tReadBuffer;
  buf->len = sizeof(tReadBuffer);
}

void Stream::onRead(uv_stream_t* st, ssize_t n, const uv_buf_t* buf) noexcept {
  auto* s = static_cast<Stream*>(st->data);
  if (n == 0 || s->closing_) return;
  if (s->lingering_) {
    s->discard(n);
    return;
  }
  if (n == UV_EOF) {
    s->eofSeen_ = true;
    uv_read_stop(st);
    if (s->ssl_ != nullptr && !s->handshakeDone_) {
      s->fail("peer closed during the TLS handshake");
      return;
    }
    s->handler_->onStreamEof();
    return;
  }
  if (n < 0) {
    s->fail(uvErrorText(static_cast<int>(n)));
    return;
  }
  s->lastReadAt_ = uv_now(st->loop);
  if (s->proxyMode_ != ProxyMode::kNone) {
    if (!s->takeProxyBytes({buf->base, static_cast<size_t>(n)})) return;
    const std::string rest = std::move(s->proxyBuffer_);
    s->proxyBuffer_ = std::string();  // its capacity goes too
    if (!rest.empty()) s->deliver(rest.data(), rest.size());
    return;
  }
  s->deliver(buf->base, static_cast<size_t>(n));
}

ProxyClient Stream::proxyClient() const {
  ProxyClient c;
  if (proxyHeader_ != nullptr && proxyHeader_->hasAddresses) {
    c.source = proxyHeader_->source;
    c.destination = proxyHeader_->destination;
  } else if (!unix_) {
    int len = sizeof(c.source);
    if (uv_tcp_getpeername(&handle_.tcp, reinterpret_cast<sockaddr*>(&c.source), &len) != 0) {
      c.source.ss_family = AF_UNSPEC;
    }
    len = sizeof(c.destination);
    if (uv_tcp_getsockname(&handle_.tcp, reinterpret_cast<sockaddr*>(&c.destination), &len) != 0) {
      c.destination.ss_family = AF_UNSPEC;
    }
  }
  if (ssl_ != nullptr) {
    c.tls = true;
    c.version = SSL_get_version(ssl_);
    if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_)) {
      c.cipher = SSL_CIPHER_get_name(cipher);
    }
    if (const char* sni = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) c.sni = sni;
    const uint8_t* alpn = nullptr;
    unsigned alpnLength = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpnLength);
    if (alpn != nullptr) c.alpn.assign(reinterpret_cast<const char*>(alpn), alpnLength);
  }
  return c;
}

void Stream::deliver(const char* data, size_t size) {
  if (ssl_ == nullptr) {
    handler_->onStreamData(data, size);
  } else {
    handleCiphertext(data, size);
  }
}

bool Stream::takeProxyBytes(std::string_view data) {
  proxyBuffer_.append(data);
  std::string error;
  if (proxyMode_ == ProxyMode::kRefused) {
    switch (matchProxySignature(proxyBuffer_)) {
      case ProxySignature::kPartial:
        return false;  // at most 11 bytes held: a signature is 12
      case ProxySignature::kNo:
        proxyMode_ = ProxyMode::kNone;
        return true;
      case ProxySignature::kYes:
        error = "a PROXY protocol header from a source it is not trusted from";
        break;
    }
  } else {
    ProxyParse parse = parseProxyHeader(proxyBuffer_);
    if (parse.state == ProxyParse::State::kNeedMore) return false;  // bounded by the parser
    if (parse.state == ProxyParse::State::kDone) {
      if (parse.header.hasAddresses) peerIp_ = formatIp(parse.header.source);
      proxyMode_ = ProxyMode::kNone;
      proxyBuffer_.erase(0, parse.consumed);
      proxyHeader_ = std::make_unique<ProxyHeader>(std::move(parse.header));
      handler_->onStreamProxyHeader(proxyHeader_.get(), "");
      return !closing_;
    }
    error = "PROXY protocol: " + parse.error;
  }
  proxyMode_ = ProxyMode::kNone;
  handler_->onStreamProxyHeader(nullptr, error);
  fail(error);
  return false;
}

void Stream::handleCiphertext(const char* data, size_t size) {
  BIO_write(networkIn_, data, static_cast<int>(size));
  pumpTls();
}

void Stream::pumpTls() {
  // Re-entrancy: a handler called from here may stop/start reading; the
  // outermost pump finishes the work instead of recursing.
  if (pumping_) {
    pumpAgain_ = true;
    return;
  }
  pumping_ = true;
  do {
    pumpAgain_ = false;
    if (!handshakeDone_) {
      // No ERR_clear_error() before SSL_do_handshake, SSL_read or SSL_write:
      // BoringSSL clears the error queue on entry to each of them.
      int rc = SSL_do_handshake(ssl_);
      if (rc != 1) {
        int err = SSL_get_error(ssl_, rc);
        flushTls();  // the alert, or our part of the handshake
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
          pumping_ = false;
          fail("TLS handshake: " + handshakeFailure(ssl_));
          return;
        }
        break;
      }
      handshakeDone_ = true;
      // A TLS 1.3 server's NewSessionTickets are queued by BoringSSL when
      // the handshake completes and written only by the next SSL_write.
      // Held for the first response, they left the client's Finished
      // unacknowledged, and a client with Nagle on held its request until
      // our delayed ACK (~40 ms). They go out before this event returns to
      // the loop instead (RFC 8446 section 4.6.1: any time after the
      // client's Finished), in one write with a response made meanwhile.
      ticketsQueued_ = !client_ && SSL_version(ssl_) == TLS1_3_VERSION;
      flushTls();
      if (client_) {
        handler_->onStreamConnected(0);
      } else {
        handler_->onStreamHandshakeDone();
      }
      if (closing_) break;
    }
    while (reading_ && !closing_) {
      int n = SSL_read(ssl_, tPlainBuffer, sizeof(tPlainBuffer));
      if (n > 0) {
        handler_->onStreamData(tPlainBuffer, static_cast<size_t>(n));
        continue;
      }
      int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ) break;
      if (err == SSL_ERROR_ZERO_RETURN) {
        eofSeen_ = true;
        handler_->onStreamEof();
        break;
      }
      flushTls();
      pumping_ = false;
      fail("TLS read: " + drainSslErrors());
      return;
    }
    if (!closing_) {
      if (ticketsQueued_) sendTickets();
      flushTls();  // post-handshake messages (tickets, key updates)
    }
  } while (pumpAgain_ && !closing_);
  pumping_ = false;
}

void Stream::sendTickets() {
  ticketsQueued_ = false;
  // A connection already shutting down has no use for a ticket (and
  // BoringSSL refuses to write after its close_notify).
  if (shutdownStarted_) return;
  // A zero-length SSL_write writes what BoringSSL has queued, and no record
  // of its own: 0 (none of our bytes) is success, -1 an error.
  if (SSL_write(ssl_, "", 0) < 0) fail("TLS write: " + drainSslErrors());
}

void Stream::flushTls() {
  const uint8_t* contents = nullptr;
  size_t len = 0;
  if (!BIO_mem_contents(networkOut_, &contents, &len) || len == 0) return;
  sendRaw(std::string_view(reinterpret_cast<const char*>(contents), len));  // copies what it queues
  BIO_reset(networkOut_);
}

void Stream::trimBuffers() {
  if (ssl_ == nullptr) return;
  releaseEmptyMemBio(networkIn_);
  releaseEmptyMemBio(networkOut_);
}

void Stream::write(std::string_view data) {
  if (closing_ || shutdownStarted_ || data.empty()) return;
  if (corked_) {
    corkBuffer_ += data;
    return;
  }
  writeNow(data);
}

void Stream::write(std::string&& data) {
  if (corked_ && corkBuffer_.empty() && !closing_ && !shutdownStarted_) {
    corkBuffer_ = std::move(data);
    return;
  }
  write(std::string_view(data));
}

void Stream::uncork() {
  if (!corked_) return;
  corked_ = false;
  if (corkBuffer_.empty()) return;
  // Freed once sent: an idle connection keeps no buffer.
  const std::string data = std::move(corkBuffer_);
  corkBuffer_.clear();
  if (!closing_ && !shutdownStarted_) writeNow(data);
}

void Stream::writeNow(std::string_view data) {
  if (ssl_ == nullptr) {
    sendRaw(data);
    return;
  }
  // A memory BIO never blocks, so SSL_write takes everything at once.
  int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
  if (n <= 0) {
    fail("TLS write: " + drainSslErrors());
    return;
  }
  if (!holdTls_) flushTls();
}

void Stream::sendRaw(std::string_view data) {
  if (closing_) return;
  uv_stream_t* stream = uvStream();
  if (queued_ == 0) {
    // Nothing queued: hand the bytes to the kernel now. Usually it takes
    // them all, and then there is no write request, no callback, and no
    // epoll_ctl (libuv re-arms the poll set after each queued write).
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
    int n = uv_try_write(stream, &buf, 1);
    if (n > 0) {
      sent_ += static_cast<size_t>(n);
      lastWriteProgressAt_ = uv_now(handle_.handle.loop);
      data.remove_prefix(static_cast<size_t>(n));
      if (data.empty()) return;
    } else if (n != UV_EAGAIN) {
      fail("write: " + uvErrorText(n));
      return;
    }
    lastWriteProgressAt_ = uv_now(handle_.handle.loop);  // a stall is timed from here
  }
  // The rest waits in libuv's queue (a copy: the caller's buffer does not live on).
  auto* w = new WriteRequest{{}, std::string(data), this};
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  queued_ += w->data.size();
  sent_ += w->data.size();
  if (queued_ > kHighWatermark) aboveHigh_ = true;
  int rc = uv_write(&w->req, stream, &buf, 1, &Stream::onWritten);
  if (rc != 0) {
    queued_ -= w->data.size();
    sent_ -= w->data.size();
    delete w;
    fail("write: " + uvErrorText(rc));
  }
}

void Stream::onWritten(uv_write_t* req, int status) noexcept {
  auto* w = static_cast<WriteRequest*>(req->data);
  Stream* s = w->stream;
  s->queued_ -= w->data.size();
  delete w;
  if (s->closing_) return;
  s->lastWriteProgressAt_ = uv_now(s->handle_.handle.loop);
  if (status != 0) {
    s->fail("write: " + uvErrorText(status));
    return;
  }
  if (s->aboveHigh_ && s->queued_ <= kLowWatermark) {
    s->aboveHigh_ = false;
    s->handler_->onStreamDrained();
    if (s->closing_) return;
  }
  s->handler_->onStreamWritten();
}

size_t Stream::queuedBytes() const { return queued_; }

uint64_t Stream::bytesSent() const {
  // libuv's write_queue_size counts what it has not yet written to the
  // socket, including the rest of a partly written request.
  return sent_ - uv_stream_get_write_queue_size(&handle_.stream);
}

void Stream::shutdown() {
  closeAfterShutdown_ = true;
  if (shutdownDone_) {
    close();  // half closed earlier: the FIN is out, nothing left to flush
    return;
  }
  startShutdown();
}

void Stream::shutdownWrite() { startShutdown(); }

void Stream::startShutdown() {
  if (closing_ || shutdownStarted_) return;
  const bool closeNotify = ssl_ != nullptr && handshakeDone_;
  // What was held goes out before the close_notify and the FIN; on TLS both
  // records leave in one write (sealed now, flushed below).
  holdTls_ = closeNotify;
  uncork();
  holdTls_ = false;
  if (closing_) return;
  shutdownStarted_ = true;
  if (closeNotify) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // queues close_notify; we do not wait for the peer's
    flushTls();
    if (closing_) return;
  }
  if (closeAfterShutdown_ && !lingering_ && queued_ == 0) {
    // The kernel holds everything written: close() sends the FIN after it,
    // without a shutdown() call of its own.
    close();
    return;
  }
  // libuv sends the FIN once the queued writes are done.
  auto* req = new uv_shutdown_t;
  req->data = this;
  if (uv_shutdown(req, uvStream(), &Stream::onShutdown) != 0) {
    delete req;
    close();
  }
}

void Stream::onShutdown(uv_shutdown_t* req, int status) noexcept {
  auto* s = static_cast<Stream*>(req->data);
  delete req;
  if (s->closing_) return;  // closed meanwhile (status is UV_ECANCELED)
  s->shutdownDone_ = true;
  if (s->closeAfterShutdown_) {
    // Lingering waits for the peer's EOF (or the caller's close()).
    if (s->lingering_ && !s->eofSeen_ && status == 0) return;
    s->close();
  } else if (status != 0) {
    s->fail("shutdown: " + uvErrorText(status));
  }
}

void Stream::shutdownLingering(size_t maxDiscard) {
  if (closing_ || shutdownStarted_) return;
  if (!eofSeen_) {
    lingering_ = true;
    discardLeft_ = maxDiscard;
    // Reading goes on below TLS, for discarding only.
    if (!reading_) {
      uv_read_start(uvStream(), &Stream::onAlloc, &Stream::onRead);
    }
    reading_ = false;
  }
  shutdown();
}

// Lingering: what the peer sends is dropped unread (not even decrypted).
void Stream::discard(ssize_t n) {
  if (n == UV_EOF) {
    eofSeen_ = true;
    uv_read_stop(uvStream());
    if (shutdownDone_) close();  // else onShutdown closes, once our FIN is out
    return;
  }
  if (n < 0 || static_cast<size_t>(n) > discardLeft_) {
    close();  // reset, or more than we are willing to read: give up
    return;
  }
  discardLeft_ -= static_cast<size_t>(n);
}

void Stream::fail(const std::string& reason) {
  if (closing_) return;
  error_ = reason;
  close();
}

void Stream::close() {
  if (closing_) return;
  closing_ = true;
  corked_ = false;
  corkBuffer_.clear();
  reading_ = false;
  uv_close(uvHandle(), &Stream::onClosed);
}

void Stream::reset() {
  if (closing_) return;
  if (shutdownStarted_) {  // libuv refuses a reset after uv_shutdown
    close();
    return;
  }
  closing_ = true;
  reading_ = false;
  if (unix_ || uv_tcp_close_reset(&handle_.tcp, &Stream::onClosed) != 0) {
    uv_close(uvHandle(), &Stream::onClosed);
  }
}

void Stream::onClosed(uv_handle_t* h) noexcept {
  auto* s = static_cast<Stream*>(h->data);
  if (s->handler_ != nullptr) {
    if (!s->error_.empty()) s->handler_->onStreamError(s->error_);
    s->handler_->onStreamClosed();
  }
  delete s;
}

}  // namespace tlsedge::net
