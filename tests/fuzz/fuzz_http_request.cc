// HTTP/1.1 requests from a client (tests/fuzz/README.md): http::HttpParser
// as ClientConnection drives it (the default limits: 16 KiB head, 100
// fields), then what validates each head: resolveRequestTarget (Host, the
// absolute form, "*"), authorityHost, and the Connection / Upgrade lists.
// The first input byte picks the piece size the rest is also fed in; both
// feeds must report the same messages, bodies and failure.
#include <cstdint>
#include <string_view>

#include "http/http_util.h"
#include "http/request_target.h"
#include "http_fuzz.h"

namespace {

bool clean(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == ' ' || c == '\0') return false;
  }
  return true;
}

void checkHead(const tlsedge::http::MessageHead& head) {
  tlsedge::http::RequestTarget out;
  const std::string_view refused = tlsedge::http::resolveRequestTarget(head, out);
  if (refused.empty() && head.method != "CONNECT") {
    // What routing, redirects and the origin's head are built from.
    const std::string_view host = tlsedge::http::authorityHost(out.authority);
    FUZZ_CHECK(!host.empty() && clean(out.authority) && clean(out.target));
    FUZZ_CHECK(out.authority.substr(0, host.size()) == host);
    FUZZ_CHECK(out.target == "*" || (!out.target.empty() && out.target.front() == '/'));
  }
  const auto tokens = tlsedge::http::connectionTokens(head);
  for (const auto& h : head.headers) {
    (void)tlsedge::http::isHopByHop(h.name, tokens);
    (void)tlsedge::http::isFraming(h.name);
  }
  tlsedge::http::forEachUpgrade(head, [](std::string_view protocol, std::string_view name) {
    FUZZ_CHECK(!protocol.empty() && name.size() <= protocol.size());
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + bytes[0] % 16;
  const std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  tlsedge::fuzz::ParseOptions options;
  options.kind = tlsedge::http::HttpParser::Kind::kRequest;
  options.maxHeadBytes = 16 * 1024;
  options.maxHeaders = 100;
  const auto whole = tlsedge::fuzz::parse(data, 0, options);
  tlsedge::fuzz::checkFraming(whole, options);
  for (const auto& m : whole.messages) checkHead(m.head);
  tlsedge::fuzz::checkSame(whole, tlsedge::fuzz::parse(data, piece, options));
  return 0;
}
