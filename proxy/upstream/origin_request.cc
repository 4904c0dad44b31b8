#include "proxy/upstream/origin_request.h"

#include "base/ascii.h"
#include "http/http_util.h"

namespace tlsedge::proxy {
namespace {

bool isForwardedHeader(std::string_view name) {
  return ascii::equalsIgnoreCase(name, "x-forwarded-for") ||
         ascii::equalsIgnoreCase(name, "x-forwarded-proto") ||
         ascii::equalsIgnoreCase(name, "x-forwarded-host");
}

}  // namespace

std::string originRequestHead(const OriginRequest& r) {
  const http::MessageHead& head = r.head;
  const auto tokens = http::connectionTokens(head);
  std::string out;
  out.reserve(512);
  out += head.method;
  out += ' ';
  out += r.target;
  out += " HTTP/1.1\r\nHost: ";
  out += r.authority;
  out += "\r\n";
  for (const auto& h : head.headers) {
    if (http::isHopByHop(h.name, tokens) || http::isFraming(h.name) || isForwardedHeader(h.name) ||
        ascii::equalsIgnoreCase(h.name, "host")) {
      continue;
    }
    if (!r.keepExpect && ascii::equalsIgnoreCase(h.name, "expect")) continue;
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  if (head.chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  } else if (head.contentLength) {
    out += "Content-Length: ";
    out += std::to_string(*head.contentLength);
    out += "\r\n";
  }
  if (!r.upgradeOffer.empty()) {
    // Hop-by-hop, yet the upgrade is asked of the origin: passed on as such.
    out += "Connection: upgrade\r\nUpgrade: ";
    out += r.upgradeOffer;
    out += "\r\n";
  }
  out += "X-Forwarded-For: ";
  out += r.clientIp;
  out += r.https ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n";
  out += "X-Forwarded-Host: ";
  out += r.authority;
  out += "\r\n\r\n";
  return out;
}

}  // namespace tlsedge::proxy
