// AdminServer: a small HTTP/1.1 server on the control loop, the transport of
// the admin API (on a Unix socket, so that `curl --unix-socket PATH` works;
// endpoints: admin/admin_api.h) and of the metrics endpoint (on a TCP
// address; daemon/metrics_endpoint.h).
//
// TCP (bindTcp): a listening socket as the workers' (net/listener.h:
// SO_REUSEADDR and SO_REUSEPORT, so a new binary can take over the address);
// port 0 binds a free port, port() tells which.
//
// Unix socket: bind() runs at start, before any other thread creates a file, and
// creates the socket file with mode 0600 (umask 0177 around bind(2), so it
// is never wider; then checked, and the start refused if it is not). A path
// that exists: if something accepts connections on it, start is refused
// ("another tlsedge is running on admin socket PATH"); if connect() is
// refused (a stale socket left by a crash) it is unlinked and bound; any
// other connect() error (EACCES: a socket this user may not reach, maybe a
// live daemon's) refuses the start with that error. A file that is not a
// socket is never removed. Missing parent directories are created (0700).
// close() removes the socket file, if it is still ours (same inode).
// adopt() takes a listening Unix socket passed in instead (systemd socket
// activation, or the old process of an upgrade); an upgrade's old process
// closes with removeFile false, as its successor serves on the same socket.
//
// Clients: up to kMaxClients at once. Beyond, up to kMaxClients more are
// answered `503` with `Retry-After: 1` at once (and closed), any further
// ones closed; refusals are logged at most once per kRefusalLogInterval,
// with their count. Requests are parsed with http::HttpParser: head at most
// kMaxHeadBytes (431 beyond), body at most kMaxBodyBytes (413 beyond, then
// the connection closes); `Expect: 100-continue` is answered. A whole
// request must arrive within kRequestTimeout of its first byte (408 and
// close; a client trickling bytes cannot hold a place), and a connection
// silent for kIdleTimeout between requests is closed. Keep-alive and
// pipelining are served in order, one at a time: a request is answered
// (possibly later, see Handler) before the next is parsed. Responses are
// written asynchronously (uv_write); while one is being written the
// connection does not read, so a client that does not read its responses
// holds at most one, and the control loop never waits on a client. After
// a closing answer the connection is shut down for writing and what the
// client still sends is read and dropped (up to kLingerTimeout), so that it
// reads the answer rather than a reset.
//
// Thread: control loop. Lifetime: close() before the loop ends.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "admin/admin_api.h"
#include "base/result.h"
#include "conf/config.h"
#include "net/acceptor.h"

namespace tlsedge::admin {

class AdminServer {
 public:
  static constexpr size_t kMaxClients = 32;
  static constexpr size_t kMaxHeadBytes = 16 * 1024;
  static constexpr size_t kMaxHeaders = 64;
  static constexpr size_t kMaxBodyBytes = 1024 * 1024;
  static constexpr std::chrono::milliseconds kIdleTimeout{30000};
  static constexpr std::chrono::milliseconds kRequestTimeout{10000};
  static constexpr std::chrono::milliseconds kLingerTimeout{2000};
  static constexpr std::chrono::milliseconds kRefusalLogInterval{10000};

  // Answers one request by calling `reply` exactly once, now or later on
  // the control loop (a reply for a client gone meanwhile is dropped).
  using Reply = std::function<void(AdminResponse)>;
  using Handler = std::function<void(const AdminRequest&, Reply)>;

  // Creates and binds the socket (listening, not yet served). Fails with a
  // message naming the path.
  static Result<std::unique_ptr<AdminServer>> bind(const std::string& path);
  // The same on a TCP address; `what` names it in messages ("metrics").
  static Result<std::unique_ptr<AdminServer>> bindTcp(const conf::SocketAddress& address,
                                                      const std::string& what);
  // The same, serving HTTPS with `tls` (a server context: certificate, key,
  // and for client certificates the verification mode and trust).
  static Result<std::unique_ptr<AdminServer>> bindTls(const conf::SocketAddress& address,
                                                      const std::string& what,
                                                      bssl::UniquePtr<SSL_CTX> tls);
  // A listening Unix socket bound to `path`, passed in.
  static Result<std::unique_ptr<AdminServer>> adopt(int fd, const std::string& path);
  ~AdminServer();

  // The listening socket (for an upgrade to hand over); -1 once closed.
  int listeningFd() const;

  // Serves `api` (which must outlive this) on `loop`.
  Status start(uv_loop_t* loop, AdminApi* api);
  // Serves `handler` on `loop`.
  Status start(uv_loop_t* loop, Handler handler);
  // Closes the listener and every client; removes the socket file unless
  // `removeFile` is false.
  void close(bool removeFile = true);

  // Unix: the socket path; TCP: "127.0.0.1:PORT" (the bound port).
  const std::string& path() const { return path_; }
  uint16_t port() const { return port_; }  // TCP: the bound port; Unix: 0

 private:
  class Client;
  AdminServer(std::string path, int fd, ino_t inode)
      : path_(std::move(path)), fd_(fd), inode_(inode) {}
  void onAccepted(int fd, const sockaddr* peer);
  // One connection refused for being over kMaxClients: logged now, or
  // counted into the next message (at most one per kRefusalLogInterval).
  void noteRefusal(uint64_t nowMs);
  void unlinkIfOurs();

  std::string path_;
  int fd_;       // the listening socket (the acceptor's once started)
  ino_t inode_;  // of the socket file we created
  bool tcp_ = false;
  uint16_t port_ = 0;
  bssl::UniquePtr<SSL_CTX> tls_;  // set: HTTPS (TCP only)
  uv_loop_t* loop_ = nullptr;
  net::Acceptor* acceptor_ = nullptr;  // self-owned; closed by close()
  Handler handler_;
  std::set<Client*> clients_;  // all, served and busy
  size_t served_ = 0;          // clients_ under kMaxClients
  size_t busy_ = 0;            // clients_ being answered 503
  uint64_t refusedUnlogged_ = 0;
  uint64_t lastRefusalLogMs_ = 0;
  bool refusalLogged_ = false;
  bool closed_ = false;
};

}  // namespace tlsedge::admin
