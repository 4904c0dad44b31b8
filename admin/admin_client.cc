#include "admin/admin_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "http/http_parser.h"
#include "net/unix_socket.h"

namespace tlsedge::admin {
namespace {

class Collector : public http::HttpParser::Handler {
 public:
  void onHead(http::MessageHead& head) override {
    reply.status = head.status;
    if (const std::string* retry = head.find("retry-after")) reply.retryAfter = *retry;
  }
  void onBody(std::string_view data) override { reply.body.append(data); }
  void onMessageComplete() override { complete = true; }
  AdminReply reply;
  bool complete = false;
};

Result<AdminReply> requestOnce(const std::string& socketPath, const std::string& method,
                               const std::string& target, const std::string& body,
                               const std::string& accept, int timeoutSeconds) {
  auto failed = [&](const std::string& what) {
    return makeError("admin socket " + socketPath + ": " + what);
  };
  const int fd = net::connectUnix(socketPath);
  if (fd < 0) return failed(std::string("cannot connect: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  timeval tv{timeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  std::string request = method + " " + target + " HTTP/1.1\r\nHost: tlsedge\r\nAccept: " + accept +
                        "\r\nConnection: close\r\n";
  if (!body.empty() || method == "PUT") {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return failed(std::string("sending the request: ") + std::strerror(errno));
    sent += static_cast<size_t>(n);
  }

  Collector collector;
  http::HttpParser parser(http::HttpParser::Kind::kResponse, collector);
  char buf[16384];
  while (!collector.complete) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed(std::string("reading the response: ") + std::strerror(errno));
    if (n == 0) {
      if (!parser.finish() || !collector.complete) return failed("the daemon closed mid-response");
      break;
    }
    parser.feed(buf, static_cast<size_t>(n));
    if (parser.failed()) return failed("bad response: " + parser.errorReason());
  }
  return collector.reply;
}

}  // namespace

Result<AdminReply> adminRequest(const std::string& socketPath, const std::string& method,
                                const std::string& target, const std::string& body,
                                const std::string& accept, int timeoutSeconds) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kPause = std::chrono::milliseconds(250);
  const auto deadline = Clock::now() + std::chrono::seconds(timeoutSeconds);
  for (;;) {
    auto reply = requestOnce(socketPath, method, target, body, accept, timeoutSeconds);
    // The server was busy (all its places taken): it said when to come back.
    if (!reply.ok() || reply->status != 503 || reply->retryAfter.empty() ||
        Clock::now() + kPause >= deadline) {
      return reply;
    }
    std::this_thread::sleep_for(kPause);
  }
}

}  // namespace tlsedge::admin
