// The message that changes a worker's listeners: the sockets it starts
// accepting on and the ids of those it stops. The control loop's ListenerSet
// (daemon/listeners.h) computes one per worker on start and reload; it
// travels inside Worker::reconfigure and is applied on the worker's loop.
#pragma once

#include <cstdint>
#include <vector>

namespace tlsedge::proxy {

// One worker's socket of one listener, on its way from the control loop to
// the worker. Owns the fd until the worker adopts it with release(): a
// socket that never reaches a worker (it had stopped) is closed, not leaked.
class ListenSocket {
 public:
  ListenSocket(uint64_t listenerId, int fd, bool tls, bool proxyProtocol = false)
      : listenerId_(listenerId), fd_(fd), tls_(tls), proxyProtocol_(proxyProtocol) {}
  ListenSocket(ListenSocket&& other) noexcept;
  ListenSocket& operator=(ListenSocket&& other) noexcept;
  ListenSocket(const ListenSocket&) = delete;
  ListenSocket& operator=(const ListenSocket&) = delete;
  ~ListenSocket();

  uint64_t listenerId() const { return listenerId_; }
  int fd() const { return fd_; }
  bool tls() const { return tls_; }
  bool proxyProtocol() const { return proxyProtocol_; }
  // The caller owns the fd from now on.
  int release();

 private:
  uint64_t listenerId_;
  int fd_;
  bool tls_;
  bool proxyProtocol_;
};

// What one worker does with its listeners.
struct ListenerUpdate {
  std::vector<ListenSocket> open;  // its socket of each new listener
  std::vector<uint64_t> close;     // ids of listeners to stop accepting on
  uint16_t httpsPort = 443;        // the first https listener's, for redirects
};

}  // namespace tlsedge::proxy
