// Small HTTP/1.1 helpers for responses tlsedge writes itself and for the
// header rewriting between client and origin.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "net/http_parser.h"

namespace tlsedge::proxy {

// "Not Found" for 404, ...; "Unknown" for codes it does not know.
std::string_view reasonPhrase(int status);

// True if `name` is a hop-by-hop header (RFC 9110 section 7.6.1): Connection,
// Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, or
// one named in the message's Connection header (`connectionTokens`).
bool isHopByHop(std::string_view name, const std::vector<std::string_view>& connectionTokens);

// The comma-separated tokens of every Connection header, trimmed, as they
// are written (compared case-insensitively); views into `head`.
std::vector<std::string_view> connectionTokens(const net::MessageHead& head);

using net::equalsIgnoreCase;

// One chunk of a chunked body (RFC 9112 section 7.1): size in hex, CRLF,
// the data, CRLF. `data` must not be empty (that is the last chunk).
std::string chunk(std::string_view data);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// A complete response with a fixed body. `extraHeaders` is zero or more
// "Name: value\r\n" lines. For HEAD the body is left out (Content-Length kept).
std::string simpleResponse(int status, std::string_view contentType, std::string_view body,
                           bool keepAlive, std::string_view extraHeaders, bool headRequest);

}  // namespace tlsedge::proxy
