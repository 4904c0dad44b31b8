#include "proxy/listener_update.h"

#include <unistd.h>

#include <utility>

namespace tlsedge::proxy {

ListenSocket::ListenSocket(ListenSocket&& other) noexcept
    : listenerId_(other.listenerId_),
      fd_(std::exchange(other.fd_, -1)),
      tls_(other.tls_),
      proxyProtocol_(other.proxyProtocol_) {}

ListenSocket& ListenSocket::operator=(ListenSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    listenerId_ = other.listenerId_;
    fd_ = std::exchange(other.fd_, -1);
    tls_ = other.tls_;
    proxyProtocol_ = other.proxyProtocol_;
  }
  return *this;
}

ListenSocket::~ListenSocket() {
  if (fd_ >= 0) ::close(fd_);
}

int ListenSocket::release() { return std::exchange(fd_, -1); }

}  // namespace tlsedge::proxy
