#include "daemon/service_manager.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "net/listener.h"

namespace tlsedge::daemon::service {
namespace {

constexpr int kFirstFd = 3;  // SD_LISTEN_FDS_START

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// A decimal environment variable; false when absent or malformed.
bool envNumber(const char* name, unsigned long* out) {
  const char* text = ::getenv(name);
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  errno = 0;
  *out = std::strtoul(text, &end, 10);
  return errno == 0 && *end == '\0';
}

std::vector<std::string> splitNames(const char* text) {
  std::vector<std::string> names;
  if (text == nullptr) return names;
  std::string_view rest(text);
  while (true) {
    const size_t colon = rest.find(':');
    names.emplace_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return names;
}

Status describeSocket(InheritedSocket& s) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return makeError(errnoText("inherited fd " + std::to_string(s.fd) + " (" + s.name +
                               "): not a socket: getsockname"));
  }
  int type = 0;
  int listening = 0;
  socklen_t optlen = sizeof type;
  ::getsockopt(s.fd, SOL_SOCKET, SO_TYPE, &type, &optlen);
  optlen = sizeof listening;
  ::getsockopt(s.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen);
  s.family = ss.ss_family;
  s.stream = type == SOCK_STREAM && listening != 0;
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    s.port = ntohs(a->sin_port);
    s.address = net::formatAddress(host, s.port, false);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    s.port = ntohs(a->sin6_port);
    s.address = net::formatAddress(host, s.port, true);
  } else if (ss.ss_family == AF_UNIX) {
    const auto* a = reinterpret_cast<const sockaddr_un*>(&ss);
    const size_t n =
        len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    s.address.assign(a->sun_path, strnlen(a->sun_path, n));
  } else {
    s.address = "address family " + std::to_string(ss.ss_family);
  }
  return Ok{};
}

}  // namespace

std::string InheritedSocket::describe() const {
  return "inherited fd " + std::to_string(fd) + " (" + name + ") bound to " + address;
}

Status notify(std::string_view state) {
  const char* path = ::getenv("NOTIFY_SOCKET");
  if (path == nullptr || *path == '\0') return Ok{};
  sockaddr_un addr{};
  const size_t n = std::strlen(path);
  if ((path[0] != '/' && path[0] != '@') || n >= sizeof addr.sun_path) {
    return makeError(std::string("NOTIFY_SOCKET=") + path + ": not a path or @abstract name");
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path, n);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return makeError(errnoText("notify: socket"));
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&addr), len);
  const int sendErrno = errno;
  ::close(fd);
  if (sent != static_cast<ssize_t>(state.size())) {
    errno = sendErrno;
    return makeError(errnoText(std::string("notify ") + path));
  }
  return Ok{};
}

std::string monotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const unsigned long long us = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
                                static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  return "MONOTONIC_USEC=" + std::to_string(us);
}

Result<std::vector<InheritedSocket>> takeInheritedSockets() {
  unsigned long pid = 0;
  unsigned long count = 0;
  const bool forUs = envNumber("LISTEN_PID", &pid) && pid == static_cast<unsigned long>(::getpid());
  const bool haveCount = envNumber("LISTEN_FDS", &count);
  const char* fdsText = ::getenv("LISTEN_FDS");
  std::vector<std::string> names = splitNames(::getenv("LISTEN_FDNAMES"));
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  std::vector<InheritedSocket> out;
  if (!forUs) return out;
  if (!haveCount || count > 4096) {
    return makeError(std::string("LISTEN_FDS=") + (fdsText ? fdsText : "") +
                     ": not a number of fds");
  }
  for (unsigned long i = 0; i < count; ++i) {
    InheritedSocket s;
    s.fd = kFirstFd + static_cast<int>(i);
    s.name = i < names.size() && !names[i].empty() ? names[i] : "unknown";
    if (::fcntl(s.fd, F_SETFD, FD_CLOEXEC) != 0) {
      return makeError(errnoText("inherited fd " + std::to_string(s.fd) + " (" + s.name + ")"));
    }
    if (auto described = describeSocket(s); !described) return described.error();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace tlsedge::daemon::service
