// HttpClient: an asynchronous HTTP/1.1 client (http:// and https://) on one
// libuv loop, for the control loop's own requests (the ACME client, the
// etcd gateway's client).
//
// Each request is one connection (`Connection: close`): resolve with
// uv_getaddrinfo (libuv's thread pool, never blocking the loop), connect to
// each address in turn (IPv4 and IPv6), TLS through net::Stream with the
// peer verified against the client's roots, SNI and a host name (or IP
// address) check, and the client's own certificate when it has one and the
// server asks for it (mTLS); the response is parsed by http::HttpParser
// (Content-Length, chunked with or without trailers, or delimited by the
// close). One deadline covers the whole exchange (options.timeout, or the
// request's own); the body is bounded, unless the request streams it to
// its own sink (HttpRequest::onBody: then the deadline ends with the head).
//
// Thread: the loop given to create(); nothing here is thread-safe
// (BlockingHttpClient, http/blocking_http_client.h, is the facade for
// threads without a loop).
// Lifetime: the client must outlive the callbacks it may still call:
// cancel(id), cancelAll() (or the destructor) drop pending callbacks unrun.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "http/http_parser.h"

namespace tlsedge::http {

struct Url {
  bool https = true;
  std::string host;  // without brackets for IPv6 literals
  uint16_t port = 443;
  std::string target = "/";  // path and query

  // "https://host:port/path?q": host, optional port, target.
  static Result<Url> parse(std::string_view text);
  // host, bracketed if IPv6, with ":port" when not the scheme's default.
  std::string authority() const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<Header> headers;  // Host, Content-Length, Connection are added
  std::string body;
  // The Host header sent; empty: the URL's authority. Lets a request go to
  // one resolved address of a name (acme/preflight.h) and still name it.
  std::string host;
  // The deadline of this request; unset: the client's options.timeout.
  std::optional<std::chrono::milliseconds> timeout;
  // Streaming (an etcd watch: one JSON object per line, open-ended): when
  // set and the response status is 2xx, each piece of decoded body (chunked
  // framing removed, pieces as they arrive, not split at lines) is passed
  // here instead of being kept, so the response given to `done` has an
  // empty body and maxResponseBytes does not apply. Returning false ends
  // the exchange: the connection is closed and `done` gets the head and an
  // empty body. The deadline covers only the exchange up to the response
  // head; after it the stream lasts until the server ends it (`done` with
  // the head), it fails (`done` with the error: reset, TLS error,
  // truncated chunking), or cancel(). A response that is not 2xx is kept
  // whole as without a sink (`done` gets its body; the sink is not called).
  // Called on the client's loop, never after `done`; it may call cancel()
  // or cancelAll() (then neither it nor `done` is called again). Kept, with
  // what it captures, until the exchange's handles are closed (shortly
  // after `done` or the cancel).
  std::function<bool(std::string_view)> onBody;
};

struct HttpResponse {
  int status = 0;
  std::vector<Header> headers;
  std::string body;

  // First value of a header (case-insensitive name), nullptr if absent.
  const std::string* find(std::string_view name) const;
};

// The client's own certificate (mTLS, e.g. etcd's --client-cert-auth): PEM
// text, read by the caller. Presented when a server asks for one.
struct ClientCertificate {
  std::string chainPem;  // CERTIFICATE blocks, the leaf first, then intermediates
  std::string keyPem;    // the leaf's private key, unencrypted (PKCS#8, PKCS#1 or SEC1)
  // Names for messages (the file paths); the key's text is never in one.
  std::string chainSource;
  std::string keySource;
};

struct HttpClientOptions {
  // Trust anchors as PEM text, each with a name for messages (a file path).
  std::vector<std::pair<std::string, std::string>> roots;
  std::optional<ClientCertificate> clientCertificate;
  std::chrono::milliseconds timeout{30000};  // the whole exchange (HttpRequest::timeout)
  size_t maxResponseBytes = 4 << 20;         // the body, decoded (unless streamed)
  std::string userAgent = "tlsedge";
};

class HttpClient {
 public:
  using Callback = std::function<void(Result<HttpResponse>)>;

  // Builds the TLS context. Errors name the source: a root bundle that
  // does not parse, a client certificate chain or key that does not parse,
  // or a key that is not the leaf's ("client certificate FILE: the public
  // key of its first certificate does not match the private key in KEY").
  static Result<std::unique_ptr<HttpClient>> create(uv_loop_t* loop, HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a request; `done` is called once on this loop (never from inside
  // send()), unless the request is cancelled first. Errors name the step and
  // the peer, e.g. "connect to host:443: connection refused", "TLS with
  // host:443: certificate verify failed: ...", "GET https://...: timed out
  // after 30000 ms", "GET https://...: connection to host:443 failed: ...".
  // Returns the request's id for cancel(): never 0, never reused by this
  // client.
  uint64_t send(HttpRequest request, Callback done);

  // Aborts request `id` if it is still in flight (its connection is
  // closed); neither its `done` nor its onBody is called again. An id that
  // is unknown or whose `done` has run is ignored. May be called from the
  // client's callbacks.
  void cancel(uint64_t id);

  // Aborts every request in flight; their callbacks are not called.
  void cancelAll();

  size_t inFlight() const { return exchanges_.size(); }

 private:
  class Exchange;
  friend class BlockingHttpClient;  // sets resolveInline_
  HttpClient(uv_loop_t* loop, HttpClientOptions options)
      : loop_(loop), options_(std::move(options)) {}

  uv_loop_t* loop_;
  HttpClientOptions options_;
  bssl::UniquePtr<SSL_CTX> ctx_;
  std::map<uint64_t, Exchange*> exchanges_;  // by id
  uint64_t lastId_ = 0;
  // Names are resolved by a blocking getaddrinfo on the thread that calls
  // send(), not on libuv's thread pool: BlockingHttpClient, whose callers
  // may be that pool's threads themselves (all of them busy in fetch()
  // would leave none to resolve a name, and wait forever).
  bool resolveInline_ = false;
};

}  // namespace tlsedge::http
