#include "admin/console.h"

#include <algorithm>

namespace tlsedge::admin {
namespace {

constexpr std::string_view kPrefix = "/console";

// The page's own files only: no inline script or style (an injected
// certificate name could not run), no other origin (nothing fetched from
// elsewhere), no framing (no clickjacking of the Remove button). img-src
// 'self' is for the icon (favicon.svg): without one, a browser asks for
// /favicon.ico, which needs a token and would count as a failed attempt.
constexpr std::string_view kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void secure(AdminResponse& r) {
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Content-Security-Policy", std::string(kPolicy));
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
}

}  // namespace

std::string_view consoleContentType(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".svg")) return "image/svg+xml";
  if (name.ends_with(".png")) return "image/png";
  return "application/octet-stream";
}

std::optional<AdminResponse> consoleAnswer(std::string_view method, std::string_view path) {
  path = path.substr(0, path.find('?'));
  const bool root = path == "/";
  if (!root && path != kPrefix && !path.starts_with(std::string(kPrefix) + "/")) {
    return std::nullopt;
  }
  AdminResponse r;
  if (method != "GET") {
    r = adminError(405, "method not allowed; allowed: GET");
    r.allow = "GET";
  } else if (root) {
    r.status = 302;
    r.contentType = "text/plain; charset=utf-8";
    r.body = "the web console: /console/\n";
    r.headers.emplace_back("Location", "/console/");
  } else {
    std::string_view name = path.substr(std::min(path.size(), kPrefix.size() + 1));
    if (name.empty()) name = "index.html";
    const auto files = consoleFiles();
    const auto file = std::find_if(files.begin(), files.end(),
                                   [&](const ConsoleFile& f) { return f.name == name; });
    if (file == files.end()) {
      r = adminError(404, "no such console file: " + std::string(path));
    } else {
      r.contentType = std::string(consoleContentType(name));
      r.body = std::string(file->body);
    }
  }
  secure(r);
  return r;
}

}  // namespace tlsedge::admin
