#include "http/http_util.h"

#include <algorithm>
#include <array>
#include <utility>

namespace tlsedge::http {

std::string_view reasonPhrase(int status) {
  static constexpr std::array<std::pair<int, std::string_view>, 32> kReasons{{
      {100, "Continue"},
      {101, "Switching Protocols"},
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {206, "Partial Content"},
      {301, "Moved Permanently"},
      {302, "Found"},
      {303, "See Other"},
      {304, "Not Modified"},
      {307, "Temporary Redirect"},
      {308, "Permanent Redirect"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {413, "Content Too Large"},
      {421, "Misdirected Request"},
      {422, "Unprocessable Content"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {502, "Bad Gateway"},
      {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
      {505, "HTTP Version Not Supported"},
      {409, "Conflict"},
      {410, "Gone"},
  }};
  for (const auto& [code, text] : kReasons) {
    if (code == status) return text;
  }
  return "Unknown";
}

bool isHopByHop(std::string_view name, const std::vector<std::string_view>& tokens) {
  static constexpr std::array<std::string_view, 9> kHopByHop{
      "connection", "keep-alive",         "proxy-connection", "te", "trailer", "transfer-encoding",
      "upgrade",    "proxy-authenticate", "http2-settings"};
  for (auto h : kHopByHop) {
    if (equalsIgnoreCase(name, h)) return true;
  }
  for (auto t : tokens) {
    if (equalsIgnoreCase(name, t)) return true;
  }
  return false;
}

bool isFraming(std::string_view name) {
  return equalsIgnoreCase(name, "content-length") || equalsIgnoreCase(name, "transfer-encoding");
}

bool relayableTrailer(std::string_view name) {
  static constexpr std::string_view kRefused[] = {"host",
                                                  "authorization",
                                                  "proxy-authorization",
                                                  "www-authenticate",
                                                  "proxy-authenticate",
                                                  "cookie",
                                                  "set-cookie",
                                                  "content-encoding",
                                                  "content-type",
                                                  "content-range",
                                                  "cache-control",
                                                  "expect",
                                                  "max-forwards",
                                                  "pragma",
                                                  "range",
                                                  "location",
                                                  "age",
                                                  "date",
                                                  "expires",
                                                  "retry-after",
                                                  "vary",
                                                  "content-location",
                                                  "server"};
  if (name.empty() || isHopByHop(name, {}) || isFraming(name)) return false;
  if (name.size() > 3 && equalsIgnoreCase(name.substr(0, 3), "if-")) return false;
  for (std::string_view refused : kRefused) {
    if (equalsIgnoreCase(name, refused)) return false;
  }
  return true;
}

std::string lastChunk(const std::vector<Header>& trailers) {
  std::string out = "0\r\n";
  for (const Header& h : trailers) {
    if (relayableTrailer(h.name)) out.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  return out.append("\r\n");
}

std::vector<std::string_view> connectionTokens(const http::MessageHead& head) {
  std::vector<std::string_view> out;
  for (const auto& h : head.headers) {
    if (equalsIgnoreCase(h.name, "connection")) {
      forEachListItem(h.value, [&](std::string_view token) { out.push_back(token); });
    }
  }
  return out;
}

std::string chunk(std::string_view data) {
  char size[24];
  int n = snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string out;
  out.reserve(static_cast<size_t>(n) + data.size() + 2);
  out.append(size, static_cast<size_t>(n));
  out += data;
  out += "\r\n";
  return out;
}

std::string simpleResponse(int status, std::string_view contentType, std::string_view body,
                           bool keepAlive, std::string_view extraHeaders, bool headRequest) {
  std::string out;
  out.reserve(160 + extraHeaders.size() + body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reasonPhrase(status);
  out += "\r\nServer: tlsedge\r\n";
  if (!contentType.empty()) {
    out += "Content-Type: ";
    out += contentType;
    out += "\r\n";
  }
  out += "Content-Length: ";
  out += std::to_string(body.size());
  out += "\r\n";
  out += extraHeaders;
  if (!keepAlive) out += "Connection: close\r\n";
  out += "\r\n";
  if (!headRequest) out += body;
  return out;
}

}  // namespace tlsedge::http
