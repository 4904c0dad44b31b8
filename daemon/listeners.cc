#include "daemon/listeners.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>

#include "base/log.h"
#include "net/listener.h"

namespace tlsedge::daemon {
namespace {

constexpr int kBacklog = 511;

const char* scheme(bool tls) { return tls ? "https" : "http"; }

// "[::0]:443" and "[::]:443" agree; IPv4 literals are already canonical
// once parsed (the config accepts only dotted quads).
std::string canonical(const std::string& host, uint16_t port, bool ipv6) {
  if (ipv6) {
    in6_addr addr{};
    char buf[INET6_ADDRSTRLEN] = {};
    if (inet_pton(AF_INET6, host.c_str(), &addr) == 1 &&
        inet_ntop(AF_INET6, &addr, buf, sizeof buf) != nullptr) {
      return net::formatAddress(buf, port, true);
    }
  }
  return net::formatAddress(host, port, ipv6);
}

// A close-on-exec copy of `fd`, or an error naming `what`.
Result<int> duplicate(int fd, const std::string& what) {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return makeError("listen " + what + ": dup: " + std::strerror(errno));
  return copy;
}

}  // namespace

SocketGroup::~SocketGroup() {
  for (int fd : fds) ::close(fd);
}

// ----------------------------------------------------------------- ListenerSet

Result<ListenerSet::Plan> ListenerSet::prepare(const conf::Config& config, int workers) {
  struct Entry {
    const conf::ListenAddress* address;
    bool tls;
    std::string configured;
    ptrdiff_t match = -1;  // index into open_
  };
  std::vector<Entry> entries;
  for (bool tls : {true, false}) {
    for (const auto& a : tls ? config.httpsListen : config.httpListen) {
      entries.push_back({&a, tls, canonical(a.host, a.port, a.ipv6)});
    }
  }

  std::vector<bool> kept(open_.size(), false);
  auto claim = [&](Entry& e, auto same) {
    for (size_t i = 0; i < open_.size(); ++i) {
      if (!kept[i] && open_[i].tls == e.tls && open_[i].proxyProtocol == e.address->proxyProtocol &&
          same(open_[i])) {
        kept[i] = true;
        e.match = static_cast<ptrdiff_t>(i);
        return;
      }
    }
  };
  for (auto& e : entries) {
    claim(e, [&](const Listener& l) { return l.configured == e.configured; });
  }
  for (auto& e : entries) {
    if (e.match >= 0 || e.address->port == 0) continue;
    claim(e, [&](const Listener& l) { return l.bound == e.configured; });
  }

  Plan plan;
  plan.sockets.resize(static_cast<size_t>(workers));
  bool firstHttps = true;
  // An early return drops `plan`, and with it every socket opened so far.
  for (auto& e : entries) {
    Listener l;
    if (e.match >= 0) {
      l = open_[static_cast<size_t>(e.match)];
      l.configured = e.configured;  // what the next reload compares against
    } else {
      const conf::ListenAddress& a = *e.address;
      // SO_REUSEPORT would let a second socket join one of our own groups
      // (even one of the other scheme): refuse rather than share.
      for (size_t i = 0; i < open_.size(); ++i) {
        if (kept[i] && a.port != 0 && open_[i].bound == e.configured) {
          return makeError("listen " + std::string(scheme(e.tls)) + " " + a.text +
                           ": the address of the running " + scheme(open_[i].tls) + " listener " +
                           open_[i].display + ", which stays");
        }
      }
      l.id = nextId_++;
      l.tls = e.tls;
      l.proxyProtocol = a.proxyProtocol;
      l.configured = e.configured;
      l.sockets = std::make_shared<SocketGroup>();
      uint16_t port = a.port;
      std::vector<int> inherited = takeInherited(a, e.configured);
      if (!inherited.empty()) {
        // The group keeps the inherited sockets; every worker gets a copy.
        l.sockets->fds = inherited;
        auto bound = net::boundPort(inherited.front());
        if (!bound) return makeError("listen " + a.text + ": " + bound.error().message);
        port = *bound;
        const size_t n = std::max(inherited.size(), plan.sockets.size());
        for (size_t i = 0; i < n; ++i) {
          auto fd = duplicate(inherited[i % inherited.size()], a.text);
          if (!fd) return fd.error();
          plan.sockets[i % plan.sockets.size()].emplace_back(l.id, *fd, e.tls, a.proxyProtocol);
        }
        log::info(std::string(scheme(e.tls)) + " " + a.text + ": " +
                  std::to_string(inherited.size()) + " inherited socket(s), not bound again");
      } else {
        for (auto& socketsOfWorker : plan.sockets) {
          auto fd = net::openListenSocket(a.host, port, a.ipv6, kBacklog);
          if (!fd) return fd.error();
          socketsOfWorker.emplace_back(l.id, *fd, e.tls, a.proxyProtocol);
          auto copy = duplicate(*fd, a.text);
          if (!copy) return copy.error();
          l.sockets->fds.push_back(*copy);
          if (port == 0) {  // the first socket resolves it for every worker
            auto bound = net::boundPort(*fd);
            if (!bound) return makeError("listen " + a.text + ": " + bound.error().message);
            port = *bound;
          }
        }
      }
      l.port = port;
      l.bound = canonical(a.host, port, a.ipv6);
      l.display = net::formatAddress(a.host, port, a.ipv6);
      plan.opened.push_back(l);
    }
    if (e.tls && firstHttps) {
      plan.httpsPort = l.port;
      firstHttps = false;
    }
    plan.next.push_back(std::move(l));
  }
  for (size_t i = 0; i < open_.size(); ++i) {
    if (!kept[i]) plan.closed.push_back(open_[i]);
  }
  if (!inherited_.empty()) {
    std::string names;
    for (const auto& s : inherited_) names += (names.empty() ? "" : ", ") + s.describe();
    return makeError("LISTEN_FDS: " + names + ": no listen: entry has this address");
  }
  return plan;
}

std::vector<int> ListenerSet::takeInherited(const conf::SocketAddress& address,
                                            const std::string& configured) {
  const int family = address.ipv6 ? AF_INET6 : AF_INET;
  std::string want;
  for (const auto& s : inherited_) {
    if (s.stream && s.family == family &&
        (s.address == configured ||
         (address.port == 0 && s.address == canonical(address.host, s.port, address.ipv6)))) {
      want = s.address;
      break;
    }
  }
  std::vector<int> fds;
  if (want.empty()) return fds;
  std::erase_if(inherited_, [&](const service::InheritedSocket& s) {
    if (!s.stream || s.address != want) return false;
    fds.push_back(s.fd);
    return true;
  });
  return fds;
}

std::vector<std::pair<int, std::string>> ListenerSet::handover() const {
  std::vector<std::pair<int, std::string>> out;
  for (const auto& l : open_) {
    for (int fd : l.sockets->fds) out.emplace_back(fd, scheme(l.tls));
  }
  return out;
}

std::vector<proxy::ListenerUpdate> ListenerSet::commit(Plan plan) {
  for (const auto& l : plan.opened) {
    log::info(std::string("listening ") + scheme(l.tls) + " " + l.display);
  }
  for (const auto& l : plan.closed) {
    log::info("closed listener " + l.display + " (" + scheme(l.tls) + ")");
  }
  std::vector<proxy::ListenerUpdate> updates(plan.sockets.size());
  for (size_t w = 0; w < updates.size(); ++w) {
    updates[w].open = std::move(plan.sockets[w]);
    for (const auto& l : plan.closed) updates[w].close.push_back(l.id);
    updates[w].httpsPort = plan.httpsPort;
  }
  open_ = std::move(plan.next);
  return updates;
}

}  // namespace tlsedge::daemon
