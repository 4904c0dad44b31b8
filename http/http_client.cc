#include "http/http_client.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <strings.h>
#include <cstring>

#include "net/stream.h"
#include "net/tls.h"
#include "net/tls_roots.h"

namespace tlsedge::http {
namespace {

constexpr uint8_t kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr size_t kMaxHeadBytes = 64 << 10;
constexpr size_t kMaxHeaders = 200;

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && strncasecmp(s.data(), prefix.data(), prefix.size()) == 0;
}

bool isIpLiteral(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// The chain and key of `cert` into `ctx`, presented when a server asks.
Status useClientCertificate(SSL_CTX* ctx, const ClientCertificate& cert) {
  const std::string chainWhat = "client certificate " + cert.chainSource;
  const std::string keyWhat = "client certificate key " + cert.keySource;
  auto chain = net::parseCertificates(cert.chainPem, chainWhat);
  if (!chain) return chain.error();
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(cert.keyPem.data(), cert.keyPem.size()));
  ERR_clear_error();
  bssl::UniquePtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return makeError(keyWhat + ": no private key could be parsed (expected an unencrypted PEM " +
                     "key): " + net::drainSslErrors());
  }
  X509* leaf = chain->front().get();
  ERR_clear_error();
  if (X509_check_private_key(leaf, key.get()) != 1) {
    net::takeSslErrors();  // the message says it all
    return makeError(chainWhat + ": the public key of its first certificate does not match " +
                     "the private key in " + cert.keySource);
  }
  ERR_clear_error();
  bool ok = SSL_CTX_use_certificate(ctx, leaf) == 1 && SSL_CTX_use_PrivateKey(ctx, key.get()) == 1;
  for (size_t i = 1; ok && i < chain->size(); ++i) {
    ok = SSL_CTX_add1_chain_cert(ctx, (*chain)[i].get()) == 1;
  }
  if (!ok) return makeError(chainWhat + ": cannot be used: " + net::drainSslErrors());
  return Ok{};
}

}  // namespace

Result<Url> Url::parse(std::string_view text) {
  Url url;
  std::string_view rest;
  if (startsWithNoCase(text, "https://")) {
    rest = text.substr(8);
  } else if (startsWithNoCase(text, "http://")) {
    url.https = false;
    url.port = 80;
    rest = text.substr(7);
  } else {
    return makeError("URL `" + std::string(text) + "`: only http:// and https:// are supported");
  }
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  if (size_t hash = target.find('#'); hash != std::string_view::npos)
    target = target.substr(0, hash);
  std::string_view portText;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return makeError("URL `" + std::string(text) + "`: unterminated IPv6 address");
    }
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return makeError("URL `" + std::string(text) + "`: bad authority");
      portText = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) portText = authority.substr(colon + 1);
  }
  if (url.host.empty() || url.host.find('@') != std::string::npos) {
    return makeError("URL `" + std::string(text) + "`: no host (or user info, not supported)");
  }
  if (!portText.empty()) {
    unsigned port = 0;
    for (char c : portText) {
      if (c < '0' || c > '9' || port > 65535) {
        return makeError("URL `" + std::string(text) + "`: bad port");
      }
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port == 0 || port > 65535) return makeError("URL `" + std::string(text) + "`: bad port");
    url.port = static_cast<uint16_t>(port);
  }
  url.target = target.empty() ? "/" : std::string(target);
  if (url.target.front() == '?') url.target = "/" + url.target;
  return url;
}

std::string Url::authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (https ? 443 : 80)) out += ":" + std::to_string(port);
  return out;
}

const std::string* HttpResponse::find(std::string_view name) const {
  for (const Header& h : headers) {
    if (h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0) {
      return &h.value;
    }
  }
  return nullptr;
}

// One request: resolve, connect (each address in turn), send, read.
// Deletes itself once the callback ran (or was dropped) and every libuv
// handle it used is closed.
class HttpClient::Exchange : public net::Stream::Handler, public HttpParser::Handler {
 public:
  Exchange(HttpClient* client, uint64_t id, HttpRequest request, Callback done)
      : client_(client),
        id_(id),
        request_(std::move(request)),
        done_(std::move(done)),
        timeout_(request_.timeout.value_or(client->options_.timeout)) {
    what_ = request_.method + " " + request_.url;
  }

  void start() {
    starting_ = true;  // failures wait for the loop: `done` never runs inside send()
    uv_timer_init(client_->loop_, &timer_);
    timer_.data = this;
    timerOpen_ = true;
    uv_timer_start(&timer_, &Exchange::onTimer, static_cast<uint64_t>(timeout_.count()), 0);
    auto url = Url::parse(request_.url);
    if (!url) {
      fail(url.error().message);
    } else {
      url_ = std::move(*url);
      peer_ = (url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host) + ":" +
              std::to_string(url_.port);
      resolve();
    }
    starting_ = false;
  }

  // The client is going away: no callback, just tear down.
  void abort() {
    client_ = nullptr;
    done_ = nullptr;
    finished_ = true;
    tearDown();
  }

 private:
  // Fails the exchange: at once, or from the loop while send() is running.
  void fail(std::string message) {
    if (!starting_) {
      finish(makeError(std::move(message)));
      return;
    }
    early_ = std::move(message);
    uv_timer_start(&timer_, &Exchange::onTimer, 0, 0);
  }

  static void onTimer(uv_timer_t* t) noexcept {
    auto* self = static_cast<Exchange*>(t->data);
    if (!self->early_.empty()) {
      self->finish(makeError(self->early_));
    } else {
      self->finish(makeError(self->what_ + ": timed out after " +
                             std::to_string(self->timeout_.count()) + " ms"));
    }
  }

  void resolve() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    resolve_.data = this;
    if (client_->resolveInline_) {  // a blocking getaddrinfo: see resolveInline_
      int rc =
          uv_getaddrinfo(client_->loop_, &resolve_, nullptr, url_.host.c_str(), nullptr, &hints);
      useAddresses(rc, resolve_.addrinfo);
      return;
    }
    int rc = uv_getaddrinfo(client_->loop_, &resolve_, &Exchange::onResolved, url_.host.c_str(),
                            nullptr, &hints);
    if (rc != 0) {
      fail("resolve " + url_.host + ": " + uv_strerror(rc));
      return;
    }
    resolving_ = true;
  }

  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
    auto* self = static_cast<Exchange*>(req->data);
    self->resolving_ = false;
    if (self->finished_) {
      uv_freeaddrinfo(res);
      self->maybeDelete();
      return;
    }
    self->useAddresses(status, res);
  }

  // Takes `res` (freed here) and connects to its first address.
  void useAddresses(int status, addrinfo* res) {
    if (status != 0) {
      uv_freeaddrinfo(res);
      fail("resolve " + url_.host + ": " + uv_strerror(status));
      return;
    }
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      sockaddr_storage ss{};
      std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
      if (ai->ai_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(url_.port);
      } else {
        reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(url_.port);
      }
      addresses_.push_back(ss);
    }
    uv_freeaddrinfo(res);
    if (addresses_.empty()) {
      fail("resolve " + url_.host + ": no IPv4 or IPv6 address");
      return;
    }
    connectNext();
  }

  void connectNext() {
    while (next_ < addresses_.size()) {
      const sockaddr* addr = reinterpret_cast<const sockaddr*>(&addresses_[next_++]);
      SSL* ssl = nullptr;
      if (url_.https) {
        ssl = newSsl();
        if (ssl == nullptr) {
          fail("TLS with " + peer_ + ": " + net::drainSslErrors());
          return;
        }
      }
      int error = 0;
      connected_ = false;
      stream_ = net::Stream::connect(client_->loop_, addr, ssl, this, &error);
      if (stream_ != nullptr) return;
      error_ = "connect to " + peer_ + ": " + uv_strerror(error);
    }
    fail(error_.empty() ? "connect to " + peer_ + ": no address" : error_);
  }

  SSL* newSsl() {
    bssl::UniquePtr<SSL> ssl(SSL_new(client_->ctx_.get()));
    if (!ssl) return nullptr;
    if (isIpLiteral(url_.host)) {
      if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), url_.host.c_str())) {
        return nullptr;
      }
    } else if (!SSL_set_tlsext_host_name(ssl.get(), url_.host.c_str()) ||
               !SSL_set1_host(ssl.get(), url_.host.c_str())) {
      return nullptr;
    }
    return ssl.release();
  }

  // net::Stream::Handler
  void onStreamConnected(int status) override {
    if (status != 0) {
      error_ = "connect to " + peer_ + ": " + uv_strerror(status);
      retryable_ = true;
      stream_->close();
      return;
    }
    connected_ = true;
    error_.clear();
    std::string head =
        request_.method + " " + url_.target +
        " HTTP/1.1\r\nHost: " + (request_.host.empty() ? url_.authority() : request_.host) +
        "\r\nUser-Agent: " + client_->options_.userAgent + "\r\nConnection: close\r\n";
    for (const Header& h : request_.headers) head += h.name + ": " + h.value + "\r\n";
    if (!request_.body.empty() || request_.method == "POST" || request_.method == "PUT") {
      head += "Content-Length: " + std::to_string(request_.body.size()) + "\r\n";
    }
    head += "\r\n";
    stream_->write(head);
    stream_->write(request_.body);
    parser_.setHeadLimits(kMaxHeadBytes, kMaxHeaders);
    parser_.setRequestWasHead(request_.method == "HEAD");
    stream_->startReading();
  }

  void onStreamData(const char* data, size_t size) override {
    if (finished_) return;
    parser_.feed(data, size);
    if (finished_) return;
    if (stopped_) {  // the sink said stop: the head, without a body
      finish(std::move(response_));
    } else if (!error_.empty()) {
      finish(makeError(error_));
    } else if (parser_.failed()) {
      finish(makeError(what_ + ": bad response from " + peer_ + ": " + parser_.errorReason()));
    }
  }

  void onStreamEof() override {
    if (finished_) return;
    if (parser_.finish() && complete_) return;  // finish() completed a close-delimited body
    finish(makeError(what_ + ": " + peer_ + " closed the connection before the response was " +
                     "complete"));
  }

  void onStreamError(const std::string& reason) override {
    if (finished_) return;
    if (connected_) {
      error_ = what_ + ": connection to " + peer_ + " failed: " + reason;
    } else if (url_.https && reason.rfind("TLS handshake: ", 0) == 0) {
      error_ = "TLS with " + peer_ + ": " + reason.substr(15);
    } else {
      error_ = "connect to " + peer_ + ": " + reason;
    }
    retryable_ = false;
  }

  void onStreamClosed() override {
    stream_ = nullptr;
    if (finished_) {
      maybeDelete();
      return;
    }
    if (retryable_ && next_ < addresses_.size()) {
      retryable_ = false;
      connectNext();
      return;
    }
    finish(makeError(error_.empty() ? what_ + ": connection to " + peer_ + " closed" : error_));
  }

  // HttpParser::Handler
  void onHead(MessageHead& head) override {
    if (head.status >= 100 && head.status < 200) return;  // interim: the final one follows
    response_.status = head.status;
    response_.headers = std::move(head.headers);
    if (request_.onBody && head.status >= 200 && head.status < 300) {
      streaming_ = true;
      uv_timer_stop(&timer_);  // an open-ended stream: the deadline was for the head
    }
  }

  void onBody(std::string_view data) override {
    if (streaming_) {
      if (stopped_ || finished_) return;
      // The sink may cancel this exchange (then finished_): nothing more is parsed.
      if (!request_.onBody(data) && !finished_) stopped_ = true;
      if (stopped_ || finished_) parser_.pause();
      return;
    }
    if (response_.body.size() + data.size() > client_->options_.maxResponseBytes) {
      error_ = what_ + ": the response from " + peer_ + " is larger than " +
               std::to_string(client_->options_.maxResponseBytes) + " bytes";
      parser_.pause();
      return;
    }
    response_.body.append(data);
  }

  void onMessageComplete() override {
    if (response_.status == 0) return;  // the end of an interim response
    complete_ = true;
    parser_.pause();
    finish(std::move(response_));
  }

  void finish(Result<HttpResponse> result) {
    if (finished_) return;
    finished_ = true;
    Callback done = std::move(done_);
    client_->exchanges_.erase(id_);
    client_ = nullptr;
    tearDown();  // closes are asynchronous: `this` lives until they complete
    if (done) done(std::move(result));
  }

  void tearDown() {
    if (timerOpen_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&timer_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) noexcept {
        auto* self = static_cast<Exchange*>(h->data);
        self->timerOpen_ = false;
        self->maybeDelete();
      });
    }
    if (resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(&resolve_));
    if (stream_ != nullptr) stream_->close();
    maybeDelete();
  }

  void maybeDelete() {
    if (finished_ && !timerOpen_ && !resolving_ && stream_ == nullptr) delete this;
  }

  HttpClient* client_;  // null once finished
  uint64_t id_;
  HttpRequest request_;
  Callback done_;
  std::chrono::milliseconds timeout_;
  std::string what_;   // "GET https://..."
  std::string early_;  // a failure found inside send(), reported from the loop
  bool starting_ = false;
  Url url_;
  std::string peer_;  // host:port
  uv_timer_t timer_;
  bool timerOpen_ = false;
  uv_getaddrinfo_t resolve_;
  bool resolving_ = false;
  std::vector<sockaddr_storage> addresses_;
  size_t next_ = 0;
  net::Stream* stream_ = nullptr;
  bool connected_ = false;
  bool retryable_ = false;  // the last attempt failed to connect: try the next address
  std::string error_;
  HttpParser parser_{HttpParser::Kind::kResponse, *this};
  HttpResponse response_;
  bool complete_ = false;
  bool streaming_ = false;  // a 2xx response with a sink: the body goes to onBody
  bool stopped_ = false;    // the sink returned false
  bool finished_ = false;
};

Result<std::unique_ptr<HttpClient>> HttpClient::create(uv_loop_t* loop, HttpClientOptions options) {
  std::unique_ptr<HttpClient> client(new HttpClient(loop, std::move(options)));
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return makeError("HTTP client: " + net::drainSslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpnHttp11, sizeof(kAlpnHttp11));
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
  for (const auto& [source, pem] : client->options_.roots) {
    auto added = net::addCertificates(store, pem, source);
    if (!added) return added.error();
  }
  if (client->options_.clientCertificate) {
    auto used = useClientCertificate(ctx.get(), *client->options_.clientCertificate);
    if (!used) return used.error();
  }
  client->ctx_ = std::move(ctx);
  client->options_.roots.clear();              // in the store now
  client->options_.clientCertificate.reset();  // in the context now
  return client;
}

HttpClient::~HttpClient() { cancelAll(); }

uint64_t HttpClient::send(HttpRequest request, Callback done) {
  uint64_t id = ++lastId_;
  auto* exchange = new Exchange(this, id, std::move(request), std::move(done));
  exchanges_.emplace(id, exchange);
  exchange->start();
  return id;
}

void HttpClient::cancel(uint64_t id) {
  auto it = exchanges_.find(id);
  if (it == exchanges_.end()) return;
  Exchange* exchange = it->second;
  exchanges_.erase(it);
  exchange->abort();
}

void HttpClient::cancelAll() {
  auto pending = std::move(exchanges_);
  exchanges_.clear();
  for (auto& [id, e] : pending) e->abort();
}

}  // namespace tlsedge::http
