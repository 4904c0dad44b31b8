#include "daemon/listeners.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "net/listener.h"

// ListenerSet binds real sockets, on loopback only, port 0 unless a test
// needs a specific port it has just seen bound.
namespace tlsedge::daemon {
namespace {

conf::ListenAddress address(std::string host, uint16_t port, bool ipv6 = false) {
  conf::ListenAddress a;
  a.host = std::move(host);
  a.port = port;
  a.ipv6 = ipv6;
  a.text = net::formatAddress(a.host, port, ipv6);
  return a;
}

conf::Config config(std::vector<conf::ListenAddress> https, std::vector<conf::ListenAddress> http) {
  conf::Config c;
  c.workers = 2;
  c.httpsListen = std::move(https);
  c.httpListen = std::move(http);
  return c;
}

size_t openFds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

std::vector<uint16_t> ports(const ListenerSet& set) {
  std::vector<uint16_t> out;
  for (const auto& l : set.listeners()) out.push_back(l.port);
  return out;
}

// Prepares and commits; the updates (and their fds) are dropped: these tests
// look at the set's bookkeeping, not at accepting.
void apply(ListenerSet& set, const conf::Config& c) {
  auto plan = set.prepare(c, c.workers);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  set.commit(std::move(*plan));
}

TEST(ListenerSetTest, OpensOneSocketPerWorkerOnOnePort) {
  ListenerSet set;
  auto plan = set.prepare(config({address("127.0.0.1", 0)}, {address("127.0.0.1", 0)}), 2);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  ASSERT_EQ(plan->opened.size(), 2u);
  EXPECT_TRUE(plan->closed.empty());
  ASSERT_EQ(plan->sockets.size(), 2u);
  for (size_t listener = 0; listener < 2; ++listener) {
    uint16_t first = *net::boundPort(plan->sockets[0][listener].fd());
    uint16_t second = *net::boundPort(plan->sockets[1][listener].fd());
    EXPECT_NE(first, 0);
    EXPECT_EQ(first, second);
    EXPECT_EQ(first, plan->opened[listener].port);
  }
  EXPECT_TRUE(plan->sockets[0][0].tls());
  EXPECT_FALSE(plan->sockets[0][1].tls());
  EXPECT_EQ(plan->httpsPort, plan->opened[0].port);
  auto updates = set.commit(std::move(*plan));
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[1].open.size(), 2u);
  EXPECT_EQ(updates[1].httpsPort, set.listeners()[0].port);
}

TEST(ListenerSetTest, ProxyProtocolIsPartOfAListenersIdentity) {
  ListenerSet set;
  apply(set, config({address("127.0.0.1", 0)}, {}));
  const uint16_t port = set.listeners()[0].port;
  const uint64_t id = set.listeners()[0].id;
  // The same address with proxy_protocol: a new listener (its sockets carry
  // the flag to the workers) replaces the old one on the same port.
  conf::ListenAddress pp = address("127.0.0.1", port);
  pp.proxyProtocol = true;
  auto plan = set.prepare(config({pp}, {}), 2);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  ASSERT_EQ(plan->opened.size(), 1u);
  ASSERT_EQ(plan->closed.size(), 1u);
  EXPECT_EQ(plan->closed[0].id, id);
  EXPECT_TRUE(plan->opened[0].proxyProtocol);
  EXPECT_EQ(plan->opened[0].port, port);
  EXPECT_TRUE(plan->sockets[0][0].proxyProtocol());
  EXPECT_TRUE(plan->sockets[1][0].proxyProtocol());
  set.commit(std::move(*plan));
  // Unchanged on the next reload: kept.
  auto same = set.prepare(config({pp}, {}), 2);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->opened.empty());
  EXPECT_TRUE(same->closed.empty());
}

TEST(ListenerSetTest, PortZeroEntriesPairUpInOrderAndKeepTheirPorts) {
  ListenerSet set;
  apply(set, config({address("127.0.0.1", 0)}, {}));
  const auto before = ports(set);

  auto same = set.prepare(config({address("127.0.0.1", 0)}, {}), 2);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->opened.empty());
  EXPECT_TRUE(same->closed.empty());
  set.commit(std::move(*same));
  EXPECT_EQ(ports(set), before);

  apply(set, config({address("127.0.0.1", 0), address("127.0.0.1", 0)}, {}));
  auto two = ports(set);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0], before[0]);

  auto shrink = set.prepare(config({address("127.0.0.1", 0)}, {}), 2);
  ASSERT_TRUE(shrink.ok());
  ASSERT_EQ(shrink->closed.size(), 1u);
  EXPECT_EQ(shrink->closed[0].port, two[1]);
  const uint64_t closedId = shrink->closed[0].id;
  auto updates = set.commit(std::move(*shrink));
  for (const auto& u : updates) {
    EXPECT_EQ(u.close, std::vector<uint64_t>{closedId});
    EXPECT_TRUE(u.open.empty());
  }
  EXPECT_EQ(ports(set), before);
}

TEST(ListenerSetTest, NamingTheResolvedPortKeepsThePortZeroListener) {
  ListenerSet set;
  apply(set, config({address("127.0.0.1", 0), address("127.0.0.1", 0)}, {}));
  const uint16_t second = set.listeners()[1].port;
  auto plan = set.prepare(config({address("127.0.0.1", second)}, {}), 2);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan->opened.empty());
  ASSERT_EQ(plan->closed.size(), 1u);
  EXPECT_EQ(plan->httpsPort, second);
}

TEST(ListenerSetTest, TheOtherSchemeOnAKeptAddressIsRefused) {
  ListenerSet set;
  apply(set, config({address("127.0.0.1", 0)}, {}));
  const uint16_t port = set.listeners()[0].port;
  auto plan = set.prepare(config({address("127.0.0.1", 0)}, {address("127.0.0.1", port)}), 2);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << plan.error().message;
}

TEST(ListenerSetTest, AFailedBindClosesEverySocketItOpenedAndChangesNothing) {
  int blocker = ::socket(AF_INET, SOCK_STREAM, 0);  // no SO_REUSEPORT
  ASSERT_GE(blocker, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(blocker, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(blocker, 1), 0);
  const uint16_t busy = *net::boundPort(blocker);

  ListenerSet set;
  apply(set, config({address("127.0.0.1", 0)}, {}));
  const auto before = ports(set);
  const size_t fds = openFds();
  auto plan = set.prepare(
      config({address("127.0.0.1", 0), address("127.0.0.1", 0), address("127.0.0.1", busy)}, {}),
      2);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("127.0.0.1:" + std::to_string(busy)), std::string::npos);
  EXPECT_EQ(openFds(), fds);
  EXPECT_EQ(ports(set), before);
  ::close(blocker);
}

TEST(ListenerSetTest, WithoutHttpsListenersRedirectsName443) {
  ListenerSet set;
  auto plan = set.prepare(config({}, {address("127.0.0.1", 0)}), 1);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->httpsPort, 443);
}

TEST(ListenerSetTest, Ipv6AddressesCompareCanonically) {
  ListenerSet set;
  auto first = set.prepare(config({address("0:0::1", 0, true)}, {}), 1);
  if (!first.ok()) GTEST_SKIP() << "no IPv6 loopback: " << first.error().message;
  set.commit(std::move(*first));
  auto again = set.prepare(config({address("::1", 0, true)}, {}), 1);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->opened.empty());
  EXPECT_TRUE(again->closed.empty());
}

// A listening socket as systemd or an upgrading tlsedge would pass it in.
service::InheritedSocket inheritedSocket(const std::string& name) {
  auto fd = net::openListenSocket("127.0.0.1", 0, false, 16);
  EXPECT_TRUE(fd.ok());
  service::InheritedSocket s;
  s.fd = *fd;
  s.name = name;
  s.family = AF_INET;
  s.stream = true;
  s.port = *net::boundPort(*fd);
  s.address = net::formatAddress("127.0.0.1", s.port, false);
  return s;
}

ino_t inode(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

TEST(ListenerSetTest, TakesTheInheritedSocketOfItsAddressInsteadOfBinding) {
  ListenerSet set;
  auto https = inheritedSocket("https");
  auto http = inheritedSocket("http");
  const ino_t httpsInode = inode(https.fd);
  const uint16_t httpsPort = https.port;
  const int httpFd = http.fd;
  set.offerInherited({http, https});
  // By address; a port-0 entry takes the one on its host.
  auto plan = set.prepare(config({address("127.0.0.1", httpsPort)}, {address("127.0.0.1", 0)}), 3);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  ASSERT_EQ(plan->opened.size(), 2u);
  EXPECT_EQ(plan->opened[0].port, httpsPort);
  EXPECT_EQ(plan->opened[1].port, http.port);
  for (const auto& sockets : plan->sockets) {  // every worker: a copy of the same socket
    ASSERT_EQ(sockets.size(), 2u);
    EXPECT_EQ(inode(sockets[0].fd()), httpsInode);
    EXPECT_EQ(inode(sockets[1].fd()), inode(httpFd));
  }
  set.commit(std::move(*plan));
  auto handover = set.handover();
  ASSERT_EQ(handover.size(), 2u);
  EXPECT_EQ(handover[0], std::make_pair(https.fd, std::string("https")));
  EXPECT_EQ(handover[1], std::make_pair(httpFd, std::string("http")));
}

TEST(ListenerSetTest, AnInheritedSocketNoEntryTakesIsAnError) {
  ListenerSet set;
  auto https = inheritedSocket("https");
  auto stray = inheritedSocket("stray");
  const std::string expected = "inherited fd " + std::to_string(stray.fd) +
                               " (stray) bound to 127.0.0.1:" + std::to_string(stray.port);
  const size_t fds = openFds();
  set.offerInherited({https, stray});
  auto plan = set.prepare(config({address("127.0.0.1", https.port)}, {}), 2);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find(expected), std::string::npos) << plan.error().message;
  EXPECT_EQ(openFds(), fds - 1);  // the taken one closed with the plan
  ::close(stray.fd);
}

TEST(ListenerSetTest, HandsOverOneSocketPerWorkerOfBoundListeners) {
  ListenerSet set;
  apply(set, config({address("127.0.0.1", 0)}, {address("127.0.0.1", 0)}));
  auto handover = set.handover();
  ASSERT_EQ(handover.size(), 4u);  // 2 listeners x 2 workers
  EXPECT_EQ(handover[0].second, "https");
  EXPECT_EQ(handover[3].second, "http");
  EXPECT_NE(inode(handover[0].first), inode(handover[1].first));  // SO_REUSEPORT siblings
}

TEST(ListenSocketTest, ClosesItsFdUnlessReleased) {
  const size_t fds = openFds();
  {
    proxy::ListenSocket s(1, ::dup(0), true);
    proxy::ListenSocket moved(std::move(s));
    EXPECT_EQ(s.fd(), -1);
    EXPECT_EQ(openFds(), fds + 1);
  }
  EXPECT_EQ(openFds(), fds);
  proxy::ListenSocket kept(2, ::dup(0), false);
  int fd = kept.release();
  EXPECT_EQ(kept.fd(), -1);
  EXPECT_EQ(openFds(), fds + 1);
  ::close(fd);
}

}  // namespace
}  // namespace tlsedge::daemon
