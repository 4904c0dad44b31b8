// Listening sockets for SO_REUSEPORT workers.
//
// Every worker listens on its own socket bound to the same address, so the
// kernel spreads connections across workers with no shared accept queue.
// Thread: openListenSocket is called on the control loop; the fd is then
// handed to a worker, which adopts it with uv_tcp_open.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace tlsedge::net {

// Creates a non-blocking, close-on-exec TCP socket with SO_REUSEADDR and
// SO_REUSEPORT (IPV6_V6ONLY for IPv6, as nginx), binds it and listens.
// `host` is a numeric address. The error names the address.
Result<int> openListenSocket(const std::string& host, uint16_t port, bool ipv6, int backlog);

// The port a socket is bound to (resolves port 0).
Result<uint16_t> boundPort(int fd);

// "127.0.0.1:8443" / "[::1]:8443"
std::string formatAddress(const std::string& host, uint16_t port, bool ipv6);

}  // namespace tlsedge::net
