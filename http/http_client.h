// HttpClient: an asynchronous HTTP/1.1 client (http:// and https://) on one
// libuv loop, for the control loop's own requests (the ACME client).
//
// Each request is one connection (`Connection: close`): resolve with
// uv_getaddrinfo (libuv's thread pool, never blocking the loop), connect to
// each address in turn (IPv4 and IPv6), TLS through net::Stream with the
// peer verified against the client's roots, SNI and a host name (or IP
// address) check; the response is parsed by http::HttpParser
// (Content-Length, chunked or delimited by the close). One deadline covers
// the whole exchange; the body is bounded.
//
// Thread: the loop given to create(); nothing here is thread-safe.
// Lifetime: the client must outlive the callbacks it may still call:
// cancelAll() (or the destructor) drops every pending callback unrun.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <set>
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
};

struct HttpResponse {
  int status = 0;
  std::vector<Header> headers;
  std::string body;

  // First value of a header (case-insensitive name), nullptr if absent.
  const std::string* find(std::string_view name) const;
};

struct HttpClientOptions {
  // Trust anchors as PEM text, each with a name for messages (a file path).
  std::vector<std::pair<std::string, std::string>> roots;
  std::chrono::milliseconds timeout{30000};  // the whole exchange
  size_t maxResponseBytes = 4 << 20;         // the body, decoded
  std::string userAgent = "tlsedge";
};

class HttpClient {
 public:
  using Callback = std::function<void(Result<HttpResponse>)>;

  // Builds the TLS context (errors: a root bundle that does not parse).
  static Result<std::unique_ptr<HttpClient>> create(uv_loop_t* loop, HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a request; `done` is called once on this loop, never from inside
  // send(). Errors name the step and the peer, e.g. "connect to
  // host:443: connection refused", "TLS with host:443: certificate verify
  // failed: ...", "GET https://...: timed out after 30000 ms".
  void send(HttpRequest request, Callback done);

  // Aborts every request in flight; their callbacks are not called.
  void cancelAll();

  size_t inFlight() const { return exchanges_.size(); }

 private:
  class Exchange;
  HttpClient(uv_loop_t* loop, HttpClientOptions options)
      : loop_(loop), options_(std::move(options)) {}

  uv_loop_t* loop_;
  HttpClientOptions options_;
  bssl::UniquePtr<SSL_CTX> ctx_;
  std::set<Exchange*> exchanges_;
};

}  // namespace tlsedge::http
