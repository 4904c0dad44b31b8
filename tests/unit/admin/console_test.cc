// The web console's serving (admin/console.h): the embedded files are the
// ones in admin/console/ byte for byte, each with its content type; the
// security headers on every console answer (also a 404 and a 405) and on
// the wire through AdminServer; GET / redirects; the page loads nothing
// from elsewhere and puts no API text into markup. In a real browser
// against the daemon: tests/integration/test_console.py.
#include "admin/console.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "admin/admin_server.h"
#include "net/unix_socket.h"

namespace tlsedge::admin {
namespace {

std::string sourceFile(const std::string& name) {
  std::ifstream in(std::string(TLSEDGE_CONSOLE_DIR) + "/" + name, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string header(const AdminResponse& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "(absent)";
}

void expectSecured(const AdminResponse& r) {
  EXPECT_EQ(header(r, "Cache-Control"), "no-store");
  const std::string csp = header(r, "Content-Security-Policy");
  EXPECT_EQ(csp.rfind("default-src 'none'; script-src 'self'; style-src 'self';", 0), 0u) << csp;
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header(r, "X-Frame-Options"), "DENY");
}

TEST(Console, EmbedsTheSourceFilesWithTheirTypes) {
  const std::map<std::string, std::string> types = {{"index.html", "text/html; charset=utf-8"},
                                                    {"app.js", "text/javascript; charset=utf-8"},
                                                    {"style.css", "text/css; charset=utf-8"},
                                                    {"favicon.svg", "image/svg+xml"}};
  ASSERT_EQ(consoleFiles().size(), types.size());
  for (const auto& [name, type] : types) {
    const auto r = consoleAnswer("GET", "/console/" + name);
    ASSERT_TRUE(r.has_value()) << name;
    EXPECT_EQ(r->status, 200) << name;
    EXPECT_EQ(r->contentType, type) << name;
    EXPECT_EQ(r->body, sourceFile(name)) << name << " differs from admin/console/" << name;
    expectSecured(*r);
  }
  for (const char* path : {"/console", "/console/", "/console/?x=1"}) {
    const auto r = consoleAnswer("GET", path);
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->contentType, "text/html; charset=utf-8");
    EXPECT_EQ(r->body, sourceFile("index.html")) << path;
  }
  EXPECT_EQ(consoleContentType("x.png"), "image/png");
  EXPECT_EQ(consoleContentType("x.svg"), "image/svg+xml");
  EXPECT_EQ(consoleContentType("x"), "application/octet-stream");
}

TEST(Console, UnknownFilesMethodsAndOtherPaths) {
  for (const char* path :
       {"/console/nope.js", "/console/../app.js", "/console/console/app.js", "/console/app.js/"}) {
    const auto r = consoleAnswer("GET", path);
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(r->contentType, "application/json");
    EXPECT_EQ(r->body.rfind("{\"error\":\"no such console file: ", 0), 0u) << r->body;
    expectSecured(*r);
  }
  for (const char* method : {"POST", "HEAD", "PUT", "DELETE"}) {
    const auto r = consoleAnswer(method, "/console/app.js");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 405) << method;
    EXPECT_EQ(r->allow, "GET");
    expectSecured(*r);
  }
  const auto root = consoleAnswer("GET", "/");
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->status, 302);
  EXPECT_EQ(header(*root, "Location"), "/console/");
  for (const char* path : {"/consolex", "/v1/certificates", "/x/console", ""}) {
    EXPECT_FALSE(consoleAnswer("GET", path).has_value()) << path;
  }
}

TEST(Console, ThroughAdminApi) {
  // AdminApi answers console paths before any of its own (and without
  // touching the store or the hooks beyond the config).
  const auto config = conf::loadString(
      "state_dir: /nonexistent\nsites:\n  - name: s\n    hosts: [a.example]\n    routes: "
      "[{ path: /, respond: {} }]\n",
      "t.yaml", "/");
  ASSERT_TRUE(config.ok()) << config.error().message;
  AdminApi api({[&] { return *config; }, [] { return certstore::Selector::make({}); },
                [](const std::string&, certstore::CredentialsPtr) {}});
  AdminResponse r = api.handle({"GET", "/console/app.js", "", false});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.contentType, "text/javascript; charset=utf-8");
  expectSecured(r);
  EXPECT_EQ(api.handle({"GET", "/console/x", "", false}).status, 404);
  EXPECT_EQ(api.handle({"GET", "/", "", false}).status, 302);
  r = api.handle({"GET", "/v2/x", "", false});
  EXPECT_NE(r.body.find("the web console: /console/"), std::string::npos) << r.body;
  EXPECT_TRUE(r.headers.empty());  // API answers are as before
}

TEST(Console, NoExternalAssetsNoInlineScriptNoMarkupFromData) {
  for (const auto& file : consoleFiles()) {
    std::string body(file.body);
    // An SVG's namespace is a name, not something fetched.
    const std::string_view svg = "xmlns=\"http://www.w3.org/2000/svg\"";
    if (const size_t at = body.find(svg); at != std::string::npos) body.erase(at, svg.size());
    for (const char* external : {"http://", "https://", "//fonts.", "@import", "url("}) {
      EXPECT_EQ(body.find(external), std::string::npos) << file.name << " has " << external;
    }
    for (const char* markup : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                               "eval(", "new Function"}) {
      EXPECT_EQ(body.find(markup), std::string::npos) << file.name << " uses " << markup;
    }
  }
  // Every <script> has a src (the CSP refuses inline script; so must we),
  // and no element has a style attribute (refused by style-src 'self').
  const std::string index = sourceFile("index.html");
  for (size_t at = index.find("<script"); at != std::string::npos;
       at = index.find("<script", at + 1)) {
    EXPECT_EQ(index.compare(at, 13, "<script src=\""), 0) << index.substr(at, 40);
  }
  EXPECT_EQ(index.find(" style="), std::string::npos);
  EXPECT_FALSE(std::regex_search(index, std::regex(" on[a-z]+="))) << "an inline handler";
}

TEST(Console, HeadersOnTheWire) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("tlsedge-console-" + std::to_string(::getpid()) + ".sock"))
                               .string();
  auto server = AdminServer::bind(path);
  ASSERT_TRUE(server.ok()) << server.error().message;
  uv_loop_t loop;
  uv_loop_init(&loop);
  ASSERT_TRUE((*server)
                  ->start(&loop,
                          [](const AdminRequest& request, AdminServer::Reply reply) {
                            reply(*consoleAnswer(request.method, request.target));
                          })
                  .ok());
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
    const std::string request =
        "GET /console/style.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    EXPECT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
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

  const std::string head = received.substr(0, received.find("\r\n\r\n") + 2);
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  for (const char* line :
       {"\r\nContent-Type: text/css; charset=utf-8\r\n", "\r\nCache-Control: no-store\r\n",
        "\r\nContent-Security-Policy: default-src 'none'; script-src 'self'; ",
        "\r\nX-Content-Type-Options: nosniff\r\n", "\r\nX-Frame-Options: DENY\r\n",
        "\r\nConnection: close\r\n"}) {
    EXPECT_NE(head.find(line), std::string::npos) << line << " not in\n" << head;
  }
  EXPECT_EQ(received.substr(head.size() + 2), sourceFile("style.css"));
}

}  // namespace
}  // namespace tlsedge::admin
