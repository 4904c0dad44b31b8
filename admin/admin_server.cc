#include "admin/admin_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/log.h"
#include "http/http_parser.h"
#include "http/http_util.h"
#include "net/listener.h"
#include "net/loop.h"
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
  out += keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return out;
}

// At most this much per uv_write: libuv writes a request until the socket
// refuses more, so a 50 MB listing to a fast reader in one request would
// hold the control loop for its whole copy (~150 ms measured at 100k
// certificates); in slices, other events run between them.
constexpr size_t kWriteSlice = 256 * 1024;
// A lingering client that sends more than this is closed at once.
constexpr size_t kMaxDiscard = 1 << 20;

}  // namespace

// One admin connection. Deleted once both of its handles are closed.
class AdminServer::Client : public http::HttpParser::Handler {
 public:
  Client(AdminServer* server, uv_loop_t* loop)
      : server_(server), parser_(http::HttpParser::Kind::kRequest, *this) {
    if (server->tcp_) {
      uv_tcp_init(loop, &handle_.tcp);
    } else {
      uv_pipe_init(loop, &handle_.pipe, 0);
    }
    handle_.handle.data = this;
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    parser_.setHeadLimits(kMaxHeadBytes, kMaxHeaders);
  }

  uv_stream_t* stream() { return &handle_.stream; }

  void startReading() {
    armTimer();
    uv_read_start(stream(), &Client::onAlloc, &Client::onRead);
  }

  // Over kMaxClients: 503 with Retry-After, then close (lingering).
  void refuseBusy() {
    AdminResponse answer = adminError(
        503, "busy: " + std::to_string(kMaxClients) + " clients are connected; try again shortly");
    answer.retryAfter = 1;
    finishWith(std::move(answer));
  }

  bool busy = false;  // counted in the server's busy_, not served_

  // Idempotent; the object lives until both close callbacks ran.
  void close() {
    if (closing_) return;
    closing_ = true;
    token_.reset();  // replies still due are dropped
    server_->clients_.erase(this);
    --(busy ? server_->busy_ : server_->served_);
    uv_close(&handle_.handle, &Client::onClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Client::onClosed);
  }

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
  // One response, written in slices of at most kWriteSlice.
  struct Write {
    uv_write_t req;
    std::string head;
    std::string body;
    Client* client;
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
    if (closing_ || done_ || awaiting_ || pendingWrites_ > 0) return;
    uv_read_start(stream(), &Client::onAlloc, &Client::onRead);
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
  // From a request's first byte: kRequestTimeout for all of it, not
  // restarted by its reads.
  void armRequestDeadline() {
    requestTimed_ = true;
    startTimer(kRequestTimeout, [](uv_timer_t* t) noexcept {
      auto* self = static_cast<Client*>(t->data);
      if (self->done_ || self->closing_) {
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
    if (uv_shutdown(&shutdown_, stream(), [](uv_shutdown_t*, int) noexcept {}) != 0) {
      close();
      return;
    }
    uv_read_start(stream(), &Client::onAlloc, &Client::onRead);
  }

  void send(std::string head, std::string body) {
    if (closing_) return;
    auto* w = new Write{{}, std::move(head), std::move(body), this};
    ++pendingWrites_;
    writeSlice(w);
  }

  // Writes the next slice of `w`; the response counts as one pending write
  // until its last slice is written.
  void writeSlice(Write* w) {
    uv_buf_t bufs[2];
    unsigned count = 0;
    size_t budget = kWriteSlice;
    size_t at = w->sent;
    for (std::string* part : {&w->head, &w->body}) {
      if (at >= part->size()) {
        at -= part->size();
        continue;
      }
      const size_t n = std::min(part->size() - at, budget);
      bufs[count++] = uv_buf_init(part->data() + at, static_cast<unsigned>(n));
      budget -= n;
      at = 0;
      if (budget == 0) break;
    }
    w->sent += kWriteSlice - budget;
    if (uv_write(&w->req, stream(), bufs, count, &Client::onWritten) != 0) {
      --pendingWrites_;
      delete w;
      close();
    }
  }

  static void onWritten(uv_write_t* req, int status) noexcept {
    auto* w = reinterpret_cast<Write*>(req);
    Client* self = w->client;
    if (status == 0 && !self->closing_ && w->sent < w->head.size() + w->body.size()) {
      self->armTimer();
      self->writeSlice(w);
      return;
    }
    delete w;
    --self->pendingWrites_;
    if (self->closing_) return;
    if (status < 0) {
      self->close();
      return;
    }
    if (!self->requestTimed_) self->armTimer();
    if (self->pendingWrites_ > 0 || self->awaiting_) return;
    if (self->done_) {
      self->linger();
    } else {
      self->resumeParsing();
    }
  }

  static void onAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<Client*>(handle->data);
    *buf = uv_buf_init(self->readBuffer_, sizeof self->readBuffer_);
  }

  static void onRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<Client*>(stream->data);
    if (nread == 0) return;
    if (self->lingering_) {
      self->discarded_ += nread > 0 ? static_cast<size_t>(nread) : 0;
      if (nread < 0 || self->discarded_ > kMaxDiscard) self->close();
      return;
    }
    if (nread < 0) {  // EOF or error: finish writing what is due, then close
      self->done_ = true;
      self->eof_ = true;
      uv_read_stop(stream);
      if (self->pendingWrites_ == 0 && !self->awaiting_) self->close();
      return;
    }
    if (!self->requestTimed_) self->armTimer();
    self->feed(buf->base, static_cast<size_t>(nread));
  }

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
    if (pendingWrites_ > 0 || awaiting_ || done_) uv_read_stop(stream());
  }

  static void onClosed(uv_handle_t* handle) noexcept {
    auto* self = static_cast<Client*>(handle->data);
    if (++self->closedHandles_ == 2) delete self;
  }

  AdminServer* server_;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tcp_t tcp;
  } handle_;
  std::shared_ptr<Client*> token_ = std::make_shared<Client*>(this);  // null once closing
  uv_timer_t timer_;
  uv_shutdown_t shutdown_;
  http::HttpParser parser_;
  http::MessageHead head_;
  std::string body_;
  std::string rest_;  // read beyond the request being answered
  char readBuffer_[16384];
  int pendingWrites_ = 0;
  int closedHandles_ = 0;
  size_t discarded_ = 0;       // read while lingering
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
  if (listener_ == nullptr) return fd_;
  uv_os_fd_t fd = -1;
  return uv_fileno(listener_, &fd) == 0 ? fd : -1;
}

AdminServer::~AdminServer() {
  if (listener_ == nullptr && fd_ >= 0) {  // never started: nothing of libuv to close
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

Status AdminServer::start(uv_loop_t* loop, AdminApi* api) {
  return start(loop, [api](const AdminRequest& request, const Reply& reply) {
    api->handle(request, reply);
  });
}

Status AdminServer::start(uv_loop_t* loop, Handler handler) {
  handler_ = std::move(handler);
  int rc = 0;
  if (tcp_) {
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(loop, tcp);
    listener_ = reinterpret_cast<uv_handle_t*>(tcp);
    rc = uv_tcp_open(tcp, fd_);
  } else {
    auto* pipe = new uv_pipe_t;
    uv_pipe_init(loop, pipe, 0);
    listener_ = reinterpret_cast<uv_handle_t*>(pipe);
    rc = uv_pipe_open(pipe, fd_);
  }
  listener_->data = this;
  if (rc == 0) rc = uv_listen(listenerStream(), 64, &onConnection);
  fd_ = -1;  // the handle owns it now (closed with it)
  if (rc != 0) {
    return makeError((tcp_ ? "listen " : "admin socket ") + path_ + ": " + net::uvErrorText(rc));
  }
  return Ok{};
}

uv_stream_t* AdminServer::listenerStream() { return reinterpret_cast<uv_stream_t*>(listener_); }

void AdminServer::onConnection(uv_stream_t* listener, int status) noexcept {
  auto* self = static_cast<AdminServer*>(listener->data);
  if (status < 0 || self->closed_) return;
  auto* client = new Client(self, listener->loop);
  const bool accepted = uv_accept(listener, client->stream()) == 0;
  client->busy = self->served_ >= kMaxClients;
  self->clients_.insert(client);
  ++(client->busy ? self->busy_ : self->served_);
  if (!accepted) {
    client->close();
    return;
  }
  if (!client->busy) {
    client->startReading();
    return;
  }
  self->noteRefusal(uv_now(listener->loop));
  if (self->busy_ > kMaxClients) {
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
  if (listener_ != nullptr && tcp_) {
    uv_close(listener_, [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_tcp_t*>(h); });
  } else if (listener_ != nullptr) {
    uv_close(listener_, [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_pipe_t*>(h); });
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
