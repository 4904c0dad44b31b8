#include "admin/admin_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>

#include "base/log.h"
#include "http/http_parser.h"
#include "http/http_util.h"
#include "net/acceptor.h"
#include "net/listener.h"
#include "net/loop.h"
#include "net/stream.h"
#include "net/unix_socket.h"

namespace tlsedge::admin {
namespace {

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// The response head; the body is written after it as it is (never copied).
std::string responseHead(const AdminResponse& r, bool keepAlive) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " +
                    std::string(http::reasonPhrase(r.status)) +
                    "\r\nContent-Type: " + r.contentType +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (!r.allow.empty()) out += "Allow: " + r.allow + "\r\n";
  if (r.retryAfter != 0) out += "Retry-After: " + std::to_string(r.retryAfter) + "\r\n";
  if (!r.authenticate.empty()) out += "WWW-Authenticate: " + r.authenticate + "\r\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
  out += keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return out;
}

// At most this much of a response is handed to the stream at once, and at
// most kSlicesPerTurn slices per loop iteration: a 50 MB listing to a fast
// reader in one piece would hold the control loop for its whole copy (~150
// ms measured at 100k certificates); in slices, other events run between.
constexpr size_t kWriteSlice = 256 * 1024;
constexpr int kSlicesPerTurn = 4;
// A lingering client that sends more than this is closed at once.
constexpr size_t kMaxDiscard = 1 << 20;

// The subject CN of the verified client certificate, or "".
std::string clientCommonName(SSL* ssl) {
  if (ssl == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  X509* peer = SSL_get_peer_certificate(ssl);
  if (peer == nullptr) return {};
  std::string cn;
  X509_NAME* subject = X509_get_subject_name(peer);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at >= 0) {
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n > 0) cn.assign(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
  }
  X509_free(peer);
  return cn;
}

}  // namespace

// One admin connection over a net::Stream (Unix socket, TCP, or TLS on
// TCP). Deleted once its stream and its two timers are closed.
class AdminServer::Client : public http::HttpParser::Handler, public net::Stream::Handler {
 public:
  Client(AdminServer* server, uv_loop_t* loop)
      : server_(server), parser_(http::HttpParser::Kind::kRequest, *this) {
    for (uv_timer_t* t : {&timer_, &more_}) {
      uv_timer_init(loop, t);
      t->data = this;
    }
    parser_.setHeadLimits(kMaxHeadBytes, kMaxHeaders);
  }

  // Takes the accepted `fd`; false (the fd closed) if it cannot.
  bool attach(uv_loop_t* loop, int fd, const sockaddr* peer, SSL* ssl) {
    tls_ = ssl != nullptr;
    stream_ = net::Stream::adopt(loop, fd, peer, ssl, this);
    if (stream_ == nullptr) ++closedHandles_;  // no stream to wait for
    return stream_ != nullptr;
  }

  void startReading() {
    // TLS: the handshake and the first request within kRequestTimeout.
    if (tls_) {
      armRequestDeadline();
    } else {
      armTimer();
    }
    stream_->startReading();
  }

  // Over kMaxClients: 503 with Retry-After, then close (lingering). On TLS
  // once the handshake is done (nothing can be written before).
  void refuseBusy() {
    if (tls_ && !stream_->handshakeDone()) {
      refuseAfterHandshake_ = true;
      startReading();
      return;
    }
    AdminResponse answer = adminError(
        503, "busy: " + std::to_string(kMaxClients) + " clients are connected; try again shortly");
    answer.retryAfter = 1;
    finishWith(std::move(answer));
  }

  bool busy = false;  // counted in the server's busy_, not served_

  // Idempotent; the object lives until its stream and timers are closed.
  void close() {
    if (closing_) return;
    closing_ = true;
    token_.reset();  // replies still due are dropped
    server_->clients_.erase(this);
    --(busy ? server_->busy_ : server_->served_);
    if (stream_ != nullptr) stream_->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Client::onTimerClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&more_), &Client::onTimerClosed);
  }

  // net::Stream::Handler
  void onStreamHandshakeDone() override {
    if (refuseAfterHandshake_) {
      refuseAfterHandshake_ = false;
      refuseBusy();
      return;
    }
    armTimer();  // the request deadline runs from its first byte
  }
  void onStreamData(const char* data, size_t size) override {
    if (!requestTimed_) armTimer();
    feed(data, size);
  }
  void onStreamEof() override {  // finish writing what is due, then close
    done_ = true;
    eof_ = true;
    stream_->stopReading();
    if (writes_.empty() && stream_->queuedBytes() == 0 && !awaiting_) close();
  }
  void onStreamError(const std::string&) override {}
  void onStreamWritten() override {
    if (!requestTimed_) armTimer();
    progress();
  }
  void onStreamClosed() override {
    stream_ = nullptr;
    close();
    if (++closedHandles_ == 3) delete this;
  }

  // http::HttpParser::Handler
  void onHead(http::MessageHead& head) override {
    head_ = std::move(head);
    body_.clear();
    if (head_.contentLength && *head_.contentLength > kMaxBodyBytes) {
      finishWith(adminError(413, "request body over " + std::to_string(kMaxBodyBytes) + " bytes"));
      return;
    }
    const std::string* expect = head_.find("Expect");
    if (expect != nullptr && (*expect == "100-continue" || *expect == "100-Continue")) {
      send("HTTP/1.1 100 Continue\r\n\r\n", std::string());
    }
  }

  void onBody(std::string_view data) override {
    if (done_) return;
    if (body_.size() + data.size() > kMaxBodyBytes) {
      finishWith(adminError(413, "request body over " + std::to_string(kMaxBodyBytes) + " bytes"));
      return;
    }
    body_.append(data);
  }

  void onMessageComplete() override {
    if (done_) return;
    AdminRequest request;
    request.method = head_.method;
    request.target = head_.target;
    request.body = std::move(body_);
    body_.clear();
    const std::string* accept = head_.find("Accept");
    request.text = accept != nullptr && accept->find("text/plain") != std::string::npos;
    if (const std::string* authorization = head_.find("Authorization")) {
      request.authorization = *authorization;
    }
    request.peer = stream_->peerIp();
    request.clientCertificate = clientCommonName(stream_->ssl());
    // One request at a time: the rest is parsed once this one is answered.
    awaiting_ = true;
    parser_.pause();
    armTimer();  // the request is whole: the idle countdown again
    const bool keepAlive = head_.keepAlive;
    std::weak_ptr<Client*> token = token_;
    server_->handler_(request, [token, keepAlive](AdminResponse response) {
      if (auto alive = token.lock()) (*alive)->reply(std::move(response), keepAlive);
    });
  }

 private:
  // One response, handed to the stream in slices of at most kWriteSlice.
  struct Write {
    std::string head;
    std::string body;
    size_t sent = 0;  // of head + body
  };

  // Answers with an error and closes once it is written; reads nothing more.
  void finishWith(AdminResponse error) {
    done_ = true;
    parser_.pause();
    std::string head = responseHead(error, false);  // before the body is moved from
    send(std::move(head), std::move(error.body));
  }

  void reply(AdminResponse response, bool keepAlive) {
    if (!awaiting_) return;  // a second call
    awaiting_ = false;
    if (!keepAlive) done_ = true;
    std::string head = responseHead(response, keepAlive);
    send(std::move(head), std::move(response.body));
  }

  // After a response is written: parses what was read beyond its request,
  // then reads again unless that already made a request due.
  void resumeParsing() {
    parser_.resume();
    std::string rest = std::move(rest_);
    rest_.clear();
    if (!rest.empty()) feed(rest.data(), rest.size());
    if (closing_ || done_ || awaiting_ || !writes_.empty() || stream_->queuedBytes() > 0) return;
    stream_->startReading();
  }

  void startTimer(std::chrono::milliseconds after, uv_timer_cb onTimer) {
    uv_timer_start(&timer_, onTimer, static_cast<uint64_t>(after.count()), 0);
  }
  static void closeOnTimer(uv_timer_t* t) noexcept { static_cast<Client*>(t->data)->close(); }
  // Between requests (and while one is answered): kIdleTimeout.
  void armTimer() {
    requestTimed_ = false;
    startTimer(kIdleTimeout, &Client::closeOnTimer);
  }
  // From a request's first byte (TLS: from the connection): kRequestTimeout
  // for all of it, not restarted by its reads.
  void armRequestDeadline() {
    requestTimed_ = true;
    startTimer(kRequestTimeout, [](uv_timer_t* t) noexcept {
      auto* self = static_cast<Client*>(t->data);
      if (self->done_ || self->closing_ || (self->tls_ && !self->stream_->handshakeDone())) {
        self->close();
        return;
      }
      self->finishWith(adminError(408, "request not complete within " +
                                           std::to_string(kRequestTimeout.count() / 1000) +
                                           " s of its first byte"));
    });
  }
  // Done: the answer is written. Shut down our side, then read and drop what
  // the client still sends until its EOF (or kLingerTimeout, kMaxDiscard).
  void linger() {
    if (lingering_ || closing_) return;
    if (eof_) {
      close();
      return;
    }
    lingering_ = true;
    startTimer(kLingerTimeout, &Client::closeOnTimer);
    stream_->shutdownLingering(kMaxDiscard);
  }

  void send(std::string head, std::string body) {
    if (closing_) return;
    writes_.push_back(Write{std::move(head), std::move(body)});
    stream_->stopReading();  // one response in flight at a time
    progress();
  }

  // Hands the stream the next slices while it holds less than a slice,
  // at most kSlicesPerTurn now (then on the next loop iteration); once
  // everything is written, the next request or the close.
  void progress() {
    if (closing_ || stream_ == nullptr) return;
    for (int slices = 0; !writes_.empty();) {
      if (stream_->queuedBytes() >= kWriteSlice) return;  // onStreamWritten goes on
      if (slices++ == kSlicesPerTurn) {
        uv_timer_start(&more_, &Client::progressOnTimer, 0, 0);
        return;
      }
      Write& w = writes_.front();
      size_t budget = kWriteSlice;
      size_t at = w.sent;
      for (std::string* part : {&w.head, &w.body}) {
        if (at >= part->size()) {
          at -= part->size();
          continue;
        }
        const size_t n = std::min(part->size() - at, budget);
        stream_->write(std::string_view(*part).substr(at, n));
        budget -= n;
        at = 0;
        if (budget == 0) break;
      }
      w.sent += kWriteSlice - budget;
      if (closing_ || stream_->closing()) return;
      if (w.sent == w.head.size() + w.body.size()) writes_.pop_front();
    }
    if (stream_->queuedBytes() > 0 || awaiting_) return;
    if (done_) {
      linger();
    } else {
      resumeParsing();
    }
  }

  static void progressOnTimer(uv_timer_t* t) noexcept { static_cast<Client*>(t->data)->progress(); }

  void feed(const char* data, size_t size) {
    if (done_) return;
    const size_t used = parser_.feed(data, size);
    if (parser_.failed() && !done_) {
      const bool tooLarge = parser_.error() == http::HttpParser::Error::kHeadTooLarge ||
                            parser_.error() == http::HttpParser::Error::kTooManyHeaders;
      finishWith(adminError(tooLarge ? 431 : 400, tooLarge
                                                      ? "request head too large"
                                                      : "bad request: " + parser_.errorReason()));
    }
    if (closing_) return;
    // A request begun and not yet whole: its deadline runs from now.
    if (!done_ && !awaiting_ && !parser_.idle() && !requestTimed_) armRequestDeadline();
    if (!done_ && parser_.paused() && used < size) rest_.append(data + used, size - used);
    // One response in flight at a time: read again once it is written.
    if (!writes_.empty() || stream_->queuedBytes() > 0 || awaiting_ || done_) {
      stream_->stopReading();
    }
  }

  static void onTimerClosed(uv_handle_t* handle) noexcept {
    auto* self = static_cast<Client*>(handle->data);
    if (++self->closedHandles_ == 3) delete self;
  }

  AdminServer* server_;
  net::Stream* stream_ = nullptr;                                     // null once closed
  std::shared_ptr<Client*> token_ = std::make_shared<Client*>(this);  // null once closing
  uv_timer_t timer_;
  uv_timer_t more_;  // the next slices of a response, on the next loop iteration
  http::HttpParser parser_;
  http::MessageHead head_;
  std::string body_;
  std::string rest_;  // read beyond the request being answered
  std::deque<Write> writes_;
  int closedHandles_ = 0;  // of the stream and the two timers
  bool tls_ = false;
  bool refuseAfterHandshake_ = false;
  bool requestTimed_ = false;  // the timer is a request's deadline
  bool lingering_ = false;
  bool eof_ = false;
  bool done_ = false;      // no more requests: close once the writes are done
  bool awaiting_ = false;  // a request is with the handler, not yet answered
  bool closing_ = false;
};

Result<std::unique_ptr<AdminServer>> AdminServer::bind(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return makeError("admin socket " + path + ": the path must be 1.." +
                     std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return makeError("admin socket " + path +
                       ": the path exists and is not a socket; not replacing it");
    }
    const net::SocketProbe probe = net::probeUnixSocket(path);
    if (probe.state == net::SocketProbe::State::kAnswers) {
      return makeError("another tlsedge is running on admin socket " + path);
    }
    // Only a file nobody listens on is stale. One we may not connect to
    // (EACCES: another user's 0600 socket) may belong to a live daemon:
    // unlinking it would take its admin socket away.
    if (probe.state == net::SocketProbe::State::kUnknown) {
      return makeError(probe.message +
                       "; cannot tell whether a daemon listens there, not replacing it");
    }
    log::info("admin socket " + path + ": removing a stale socket file");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return makeError(errnoText("admin socket " + path + ": removing the stale file"));
    }
  }
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    if (std::filesystem::create_directories(parent, ec)) {
      std::filesystem::permissions(parent, std::filesystem::perms::owner_all, ec);
    }
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(errnoText("admin socket " + path + ": socket()"));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  // Created 0600 from the start: no moment where another user may connect.
  // The umask is process-wide: this runs at start, before any other thread
  // creates a file (the access log writer is idle until it is opened).
  const mode_t oldMask = ::umask(0177);
  const int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int bindErrno = errno;
  ::umask(oldMask);
  if (rc != 0) {
    ::close(fd);
    errno = bindErrno;
    return makeError(errnoText("admin socket " + path + ": bind"));
  }
  if (::lstat(path.c_str(), &st) != 0 || (st.st_mode & 0777) != 0600 || ::listen(fd, 64) != 0) {
    const std::string why = errnoText("admin socket " + path + ": not mode 0600 or listen failed");
    ::close(fd);
    ::unlink(path.c_str());
    return makeError(why);
  }
  return std::unique_ptr<AdminServer>(new AdminServer(path, fd, st.st_ino));
}

Result<std::unique_ptr<AdminServer>> AdminServer::adopt(int fd, const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return makeError("admin socket " + path + ": passed in, but the path is not a socket file");
  }
  if ((st.st_mode & 0077) != 0) {
    return makeError("admin socket " + path +
                     ": passed in with a mode wider than 0600 "
                     "(SocketMode=0600 in the .socket unit)");
  }
  return std::unique_ptr<AdminServer>(new AdminServer(path, fd, st.st_ino));
}

int AdminServer::listeningFd() const {
  if (closed_) return -1;
  return fd_;
}

AdminServer::~AdminServer() {
  if (acceptor_ == nullptr && fd_ >= 0) {  // never started: nothing of libuv to close
    ::close(fd_);
    unlinkIfOurs();
  }
}

Result<std::unique_ptr<AdminServer>> AdminServer::bindTcp(const conf::SocketAddress& address,
                                                          const std::string& what) {
  auto fd = net::openListenSocket(address.host, address.port, address.ipv6, 64);
  if (!fd) return makeError(what + " listen " + address.text + ": " + fd.error().message);
  auto port = net::boundPort(*fd);
  if (!port) {
    ::close(*fd);
    return makeError(what + " listen " + address.text + ": " + port.error().message);
  }
  std::unique_ptr<AdminServer> server(
      new AdminServer(net::formatAddress(address.host, *port, address.ipv6), *fd, 0));
  server->tcp_ = true;
  server->port_ = *port;
  return server;
}

Result<std::unique_ptr<AdminServer>> AdminServer::bindTls(const conf::SocketAddress& address,
                                                          const std::string& what,
                                                          bssl::UniquePtr<SSL_CTX> tls) {
  auto server = bindTcp(address, what);
  if (server) (*server)->tls_ = std::move(tls);
  return server;
}

Status AdminServer::start(uv_loop_t* loop, AdminApi* api) {
  return start(loop, [api](const AdminRequest& request, const Reply& reply) {
    api->handle(request, reply);
  });
}

Status AdminServer::start(uv_loop_t* loop, Handler handler) {
  handler_ = std::move(handler);
  loop_ = loop;
  // Adopted sockets may not listen yet, nor be non-blocking.
  if (::listen(fd_, 64) != 0 || ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK) != 0) {
    return makeError((tcp_ ? "listen " : "admin socket ") + path_ + ": " + std::strerror(errno));
  }
  int rc = 0;
  acceptor_ = net::Acceptor::start(
      loop, fd_, [this](int fd, const sockaddr* peer) { onAccepted(fd, peer); }, &rc);
  if (acceptor_ == nullptr) {
    fd_ = -1;  // closed by Acceptor::start
    return makeError((tcp_ ? "listen " : "admin socket ") + path_ + ": " + net::uvErrorText(rc));
  }
  return Ok{};
}

void AdminServer::onAccepted(int fd, const sockaddr* peer) {
  if (closed_) {
    ::close(fd);
    return;
  }
  SSL* ssl = nullptr;
  if (tls_ != nullptr) {
    ssl = SSL_new(tls_.get());
    if (ssl == nullptr) {
      ::close(fd);
      return;
    }
  }
  auto* client = new Client(this, loop_);
  client->busy = served_ >= kMaxClients;
  clients_.insert(client);
  ++(client->busy ? busy_ : served_);
  if (!client->attach(loop_, fd, peer, ssl)) {
    client->close();
    return;
  }
  if (!client->busy) {
    client->startReading();
    return;
  }
  noteRefusal(uv_now(loop_));
  if (busy_ > kMaxClients) {
    client->close();
  } else {
    client->refuseBusy();
  }
}

void AdminServer::noteRefusal(uint64_t nowMs) {
  ++refusedUnlogged_;
  if (refusalLogged_ && nowMs - lastRefusalLogMs_ < uint64_t(kRefusalLogInterval.count())) return;
  log::warning(path_ + ": " + std::to_string(kMaxClients) + " clients already connected; " +
               std::to_string(refusedUnlogged_) +
               " new connection(s) refused since the last such message (503, or closed)");
  refusedUnlogged_ = 0;
  lastRefusalLogMs_ = nowMs;
  refusalLogged_ = true;
}

void AdminServer::close(bool removeFile) {
  if (closed_) return;
  closed_ = true;
  while (!clients_.empty()) (*clients_.begin())->close();  // close() erases it
  if (acceptor_ != nullptr) {
    acceptor_->close();  // closes fd_
    acceptor_ = nullptr;
    fd_ = -1;
  }
  if (removeFile) unlinkIfOurs();
}

void AdminServer::unlinkIfOurs() {
  if (tcp_) return;
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == inode_) {
    ::unlink(path_.c_str());
  }
}

}  // namespace tlsedge::admin
