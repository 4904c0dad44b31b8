// ClientConnection: one HTTP/1.1 downstream connection (HTTPS or plain HTTP)
// on a worker: TLS via net::Stream, requests via http::HttpParser, one
// request at a time (pipelined requests wait, in order). Each request is a
// Request (proxy/request.h), which answers it or proxies it; this object
// writes the answer in HTTP/1.1 framing (chunked re-framing, Connection:
// close) and owns keep-alive. An upgrade request the origin answers 101 turns
// the connection into a Tunnel, which takes over both streams; this object
// stays the worker's registry entry and owns it.
//
// Limits (conf::Limits of the generation it was accepted under): one
// ConnectionTimer holds the deadline of the phase the connection is in
// (handshake, idle, head, body, send, linger); updateTimer() re-derives the
// phase after every event. Head size and field count are the parser's (431);
// the body size is the Request's (413). A connection closed while the client
// may still be sending closes lingering (net::Stream::shutdownLingering).
//
// A TLS handshake that selects `h2` (ALPN) hands the stream to an
// Http2Connection the same way.
//
// Thread: its worker's loop. Ownership: self-owned; deleted when its stream
// has closed, after telling the worker.
#pragma once

#include <memory>
#include <string>

#include "http/http_parser.h"
#include "http/request_target.h"
#include "net/stream.h"
#include "proxy/connection_timer.h"
#include "proxy/generation.h"
#include "proxy/http2_connection.h"
#include "proxy/request.h"
#include "proxy/tunnel.h"
#include "proxy/worker_stats.h"
#include "tls/tls_context.h"

namespace tlsedge::proxy {

struct CertificateSlot;

class Worker;

class ClientConnection final : public net::Stream::Handler,
                               public http::HttpParser::Handler,
                               public Downstream,
                               public Tunnel::Owner,
                               public Http2Connection::Owner,
                               public ConnectionTimer::Owner {
 public:
  // Takes over `fd`, a connection accepted from `peer` (TLS if `tlsContext`;
  // a PROXY header first or refused, by `proxyMode`) and `client`, the
  // per-client entry it was admitted under (may be null); returns null if
  // that failed (the fd is closed, the entry released).
  static ClientConnection* accept(Worker& worker, int fd, const sockaddr* peer, SSL_CTX* tlsContext,
                                  net::Stream::ProxyMode proxyMode, ClientTable::Entry* client);

  // Draining: close now if idle, else after the current response (an
  // upgrade's drain: after the next response, see Worker::drain).
  void drain();
  // Close at once (end of the drain timeout).
  void abort();
  // A reload published a new generation: an HTTP/2 connection sends GOAWAY
  // (its streams finish; the client's next ones go to a new connection). An
  // HTTP/1.1 one keeps its rules until it closes.
  void reloaded() {
    if (http2_ != nullptr) http2_->drain();
  }

  size_t registryIndex = 0;  // the worker's bookkeeping

 private:
  ClientConnection(Worker& worker, bool tls);
  ~ClientConnection() override;

  // net::Stream::Handler
  void releaseCertificates();
  void onStreamHandshakeDone() override;
  void onStreamData(const char* data, size_t size) override;
  void onStreamEof() override;
  void onStreamError(const std::string& reason) override;
  void onStreamProxyHeader(const net::ProxyHeader* header, const std::string& error) override;
  void onStreamDrained() override;
  void onStreamWritten() override;
  void onStreamClosed() override;
  // http::HttpParser::Handler
  void onHead(http::MessageHead& head) override;
  void onBody(std::string_view data) override;
  void onMessageComplete() override;
  // Downstream
  void respond(const ResponseHead& head, std::string_view body) override;
  void sendHead(const ResponseHead& head) override;
  void sendBody(std::string_view data) override;
  void endResponse(const std::vector<http::Header>& trailers) override;
  void cutResponse() override;
  bool sendInterim(const http::MessageHead& head) override;
  void upgraded(http::MessageHead& head, net::Stream* origin,
                std::string_view originBytes) override;
  void pauseBody() override;
  void resumeBody() override;
  bool writeQueueFull() const override;
  void settle() override;
  void abandon() override;
  bool covers(std::string_view) const override { return true; }
  const std::string& peerIp() const override;
  net::ProxyClient proxyClient() const override { return stream_->proxyClient(); }
  uint64_t connectionId() const override { return id_; }
  ClientTable::Entry* client() const override { return client_; }
  // Tunnel::Owner
  void onTunnelClosed() override;
  // Http2Connection::Owner
  void onHttp2Closed() override;
  const certstore::Credentials* servedCertificate() const override {
    return handshake_.served.get();
  }
  // The handshake counted in the worker (and the client's entry) is over.
  void endHandshake();
  // The per-client entry goes back to the worker's table (idempotent).
  void releaseClient();
  // The tunnel or the HTTP/2 connection that had the stream is done.
  void handedOffClosed();
  // ConnectionTimer::Owner
  void onDeadline(ConnectionTimer::Phase phase) override;
  void onIdleTrim() override;
  void onTimerClosed() override;

  // The HTTP/1.1 head of a response: status line, fields, framing.
  std::string headBytes(const ResponseHead& head);
  void rejectMalformed();
  // No more requests: close once what is queued is sent; `linger` if the
  // client may still be sending.
  void finish(bool linger);
  void feed(const char* data, size_t size);
  void advance();
  // The phase whose deadline applies now.
  ConnectionTimer::Phase currentPhase() const;
  // Re-arms the timer for the current phase if it changed, or if
  // `progress` is that phase (a body read, a write completed).
  void updateTimer(ConnectionTimer::Phase progress = ConnectionTimer::Phase::kNone);
  const conf::Limits& limits() const { return generation_->config->limits; }
  // Every response byte goes through here (counted for the access log).
  void send(std::string_view data);
  void send(std::string&& data);  // may hand the buffer over (Stream::write)

  Worker& worker_;
  GenerationPtr generation_;  // the rules this connection was accepted under
  bool tls_;
  uint64_t id_;
  net::Stream::ProxyMode proxyMode_ = net::Stream::ProxyMode::kNone;
  bool refused_ = false;  // the stream fails for a refusal counted as such, not its handshake
  ClientTable::Entry* client_ = nullptr;  // per-client limits; null: none apply
  bool clientHandshake_ = false;          // client_ counts our handshake in progress
  tls::HandshakeState handshake_;
  CertificateSlot* certificates_ = nullptr;   // until the handshake ends (TLS only)
  net::Stream* stream_ = nullptr;             // null once a tunnel has it
  std::unique_ptr<http::HttpParser> parser_;  // HTTP/1.1 only: null once h2 has the stream
  std::string pending_;                       // received bytes not yet parsed (parser paused)
  std::unique_ptr<Tunnel> tunnel_;            // after a 101; then nothing else here runs
  std::unique_ptr<Http2Connection> http2_;    // ALPN chose h2; then nothing else here runs
  ConnectionTimer timer_;
  uint64_t sendMark_ = 0;  // stream_->bytesSent() when the send countdown started

  // The request in progress.
  Request request_;
  bool inRequest_ = false;
  bool requestComplete_ = false;
  bool responseComplete_ = false;
  bool keepAlive_ = true;         // this connection stays open after the response
  bool clientCloses_ = false;     // the client asked to close (Connection: close, HTTP/1.0)
  bool chunkedResponse_ = false;  // we frame the response body as chunked
  bool peerDone_ = false;         // the client half-closed
  bool clientHttp11_ = true;
  bool handshakePending_ = false;  // counted in the worker's handshakes in progress
  bool done_ = false;              // closing: no more requests are read

  uint64_t handshakeStartUs_ = 0;  // accepted (TLS only); loop clock, microseconds
};

}  // namespace tlsedge::proxy
