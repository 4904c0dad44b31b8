// Small HTTP/1.1 helpers for responses tlsedge writes itself and for the
// header rewriting between client and origin.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/http_parser.h"

namespace tlsedge::http {

// "Not Found" for 404, ...; "Unknown" for codes it does not know.
std::string_view reasonPhrase(int status);

// True if `name` is a hop-by-hop header (RFC 9110 section 7.6.1): Connection,
// Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
// HTTP2-Settings (RFC 7540 3.2.1), or one named in the message's Connection
// header (`connectionTokens`).
bool isHopByHop(std::string_view name, const std::vector<std::string_view>& connectionTokens);

// True for the fields that frame a message: Content-Length and
// Transfer-Encoding. tlsedge never copies them from a head it relays; it
// writes the framing it actually sends, from what the parser decided. So a
// Connection option naming one can never leave a body unframed (RFC 9110
// 7.6.1 gives each hop its own framing).
bool isFraming(std::string_view name);

// Calls fn(item) for each element of a comma-separated field value (RFC
// 9110 5.6.1), trimmed of spaces and tabs; empty elements are skipped.
template <typename Fn>
void forEachListItem(std::string_view value, Fn fn) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    const size_t first = item.find_first_not_of(" \t");
    if (first == std::string_view::npos) continue;
    fn(item.substr(first, item.find_last_not_of(" \t") - first + 1));
  }
}

// Calls fn(protocol, name) for each protocol of every Upgrade field of
// `head` ("websocket"; "foo/2" has the name "foo"), RFC 9110 7.8.
template <typename Fn>
void forEachUpgrade(const http::MessageHead& head, Fn fn) {
  for (const auto& h : head.headers) {
    if (!ascii::equalsIgnoreCase(h.name, "upgrade")) continue;
    forEachListItem(h.value, [&](std::string_view protocol) {
      fn(protocol, protocol.substr(0, protocol.find('/')));
    });
  }
}

// The comma-separated tokens of every Connection header, trimmed, as they
// are written (compared case-insensitively); views into `head`.
std::vector<std::string_view> connectionTokens(const http::MessageHead& head);

// One chunk of a chunked body (RFC 9112 section 7.1): size in hex, CRLF,
// the data, CRLF. `data` must not be empty (that is the last chunk).
std::string chunk(std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// Whether a trailer field may be relayed to the next hop (RFC 9110 6.5.1):
// not hop-by-hop nor framing, and none of the fields whose meaning a
// recipient must not take from a trailer (Host, authentication, cookies,
// content handling, controls and conditionals, Trailer itself).
bool relayableTrailer(std::string_view name);

// The last chunk with the relayable `trailers` in it (RFC 9112 7.1.2), as
// "Name: value" lines; kLastChunk's bytes when none is.
std::string lastChunk(const std::vector<Header>& trailers);

// A complete response with a fixed body. `extraHeaders` is zero or more
// "Name: value\r\n" lines. For HEAD the body is left out (Content-Length kept).
std::string simpleResponse(int status, std::string_view contentType, std::string_view body,
                           bool keepAlive, std::string_view extraHeaders, bool headRequest);

}  // namespace tlsedge::http
