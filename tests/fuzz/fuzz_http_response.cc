// HTTP/1.1 responses from an origin (tests/fuzz/README.md): http::HttpParser
// in response mode as an upstream Exchange and http::HttpClient set it up
// (the upstream default limits: 64 KiB head, 200 fields; the request was
// HEAD or not; the origin may close after the last byte), so status lines,
// Content-Length, chunked decoding (sizes, extensions, trailers) and
// close-delimited bodies. Input: one flags byte (bit 0 HEAD, bit 1 the
// origin closes, bits 2-5 the piece size), then the origin's bytes.
#include <cstdint>
#include <string_view>

#include "http/http_util.h"
#include "http_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = bytes[0];
  const std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  tlsedge::fuzz::ParseOptions options;
  options.kind = tlsedge::http::HttpParser::Kind::kResponse;
  options.maxHeadBytes = 64 * 1024;
  options.maxHeaders = 200;
  options.requestWasHead = (flags & 1) != 0;
  options.finish = (flags & 2) != 0;
  const size_t piece = 1 + ((flags >> 2) & 15);
  const auto whole = tlsedge::fuzz::parse(data, 0, options);
  tlsedge::fuzz::checkFraming(whole, options);
  for (const auto& m : whole.messages) {
    FUZZ_CHECK(m.head.status >= 0 && m.head.status <= 999);
    const auto tokens = tlsedge::http::connectionTokens(m.head);
    for (const auto& h : m.head.headers) (void)tlsedge::http::isHopByHop(h.name, tokens);
  }
  // A close-delimited body complete at finish(): every message is complete.
  if (options.finish && whole.finished && !whole.upgraded) {
    for (const auto& m : whole.messages) FUZZ_CHECK(m.complete);
  }
  tlsedge::fuzz::checkSame(whole, tlsedge::fuzz::parse(data, piece, options));
  return 0;
}
