// AdminServer on a real Unix socket: a response far larger than one write
// slice (kWriteSlice, 256 KiB) arrives whole and in order, and the server
// answers a second request on the same connection while the first is being
// written in slices (the loop is not held by one write).
#include "admin/admin_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "net/unix_socket.h"

namespace tlsedge::admin {
namespace {

std::string pattern(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return out;
}

TEST(AdminServer, ALargeBodyIsWrittenWholeInSlices) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tlsedge-admin-server-" + std::to_string(::getpid()) + ".sock"))
                               .string();
  auto server = AdminServer::bind(path);
  ASSERT_TRUE(server.ok()) << server.error().message;
  const std::string body = pattern(3 * 1024 * 1024 + 17);  // 12+ slices, not a multiple
  uv_loop_t loop;
  uv_loop_init(&loop);
  int answered = 0;
  ASSERT_TRUE((*server)
                  ->start(&loop,
                          [&](const AdminRequest& request, AdminServer::Reply reply) {
                            ++answered;
                            AdminResponse r;
                            r.contentType = "text/plain";
                            r.body = request.target == "/big" ? body : "small";
                            reply(std::move(r));
                          })
                  .ok());

  // The client thread asks the loop to close the server when it is done
  // (the server is the loop's: principle 2).
  uv_async_t finished;
  finished.data = server->get();
  uv_async_init(&loop, &finished, [](uv_async_t* a) noexcept {
    static_cast<AdminServer*>(a->data)->close();
    uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
  });
  std::string received;
  std::thread client([&] {
    const int fd = net::connectUnix(path);
    if (fd < 0) {
      ADD_FAILURE() << "connect: " << std::strerror(errno);
      uv_async_send(&finished);
      return;
    }
    const std::string requests =
        "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n"
        "Connection: close\r\n\r\n";
    EXPECT_EQ(::send(fd, requests.data(), requests.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(requests.size()));
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    uv_async_send(&finished);
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  client.join();
  uv_loop_close(&loop);

  EXPECT_EQ(answered, 2);
  const std::string head = "Content-Length: " + std::to_string(body.size()) + "\r\n";
  const size_t start = received.find("\r\n\r\n");
  ASSERT_NE(start, std::string::npos);
  EXPECT_NE(received.substr(0, start).find(head), std::string::npos) << received.substr(0, start);
  ASSERT_GE(received.size(), start + 4 + body.size());
  EXPECT_TRUE(received.compare(start + 4, body.size(), body) == 0) << "the body differs";
  const std::string rest = received.substr(start + 4 + body.size());
  EXPECT_EQ(rest.rfind("HTTP/1.1 200", 0), 0u) << rest.substr(0, 200);
  EXPECT_EQ(rest.substr(rest.size() - 5), "small");
}

}  // namespace
}  // namespace tlsedge::admin
