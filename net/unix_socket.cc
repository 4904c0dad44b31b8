#include "net/unix_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tlsedge::net {

int connectUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

SocketProbe probeUnixSocket(const std::string& path) {
  SocketProbe probe;
  const int fd = connectUnix(path);
  if (fd >= 0) {
    ::close(fd);
    probe.state = SocketProbe::State::kAnswers;
    return probe;
  }
  probe.error = errno;
  // Only these two say nobody listens: the path has no socket file, or the
  // file's listener is gone (the kernel refuses at once). EACCES and the
  // like say nothing about a daemon (issue 15: one that a user may not
  // reach was taken for none, and its store was bypassed).
  probe.state = probe.error == ENOENT || probe.error == ECONNREFUSED
                    ? SocketProbe::State::kNothingListens
                    : SocketProbe::State::kUnknown;
  probe.message = "admin socket " + path + ": cannot connect: " + std::strerror(probe.error);
  return probe;
}

}  // namespace tlsedge::net
