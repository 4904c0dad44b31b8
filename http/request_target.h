// What a request is routed by and forwarded as: its authority (the Host
// field, or the authority of an absolute-form target) and its target in
// origin-form. One place decides both, so routing, redirects, the ACME
// challenge path and the head sent to the origin can never disagree.
//
// RFC 9112 3.2: exactly one Host field. RFC 9112 3.2.2: an absolute-form
// target's authority wins over Host. RFC 9110 4.2.4: no userinfo in an
// http(s) URI. RFC 3986 3.2.2/3.2.3: the authority is a host (a DNS name,
// an IPv4 literal or a bracketed IPv6 literal) and an optional port.
//
// Thread: any; pure functions. The views returned point into the head (or
// into `storage`) and live as long as they do.
#pragma once

#include <string>
#include <string_view>

#include "http/http_parser.h"

namespace tlsedge::http {

struct RequestTarget {
  std::string_view authority;  // "host[:port]", validated; what routing and Host use
  std::string_view target;     // origin-form ("/p?q"), or "*" for OPTIONS
  std::string storage;         // backs `target` when it had to be built ("/?q")
};

// Fills `out` from a request head; on a request that must be refused (400),
// returns why ("two Host fields", ...), else an empty view. CONNECT
// (authority-form) is the caller's to refuse before this is asked.
std::string_view resolveRequestTarget(const http::MessageHead& head, RequestTarget& out);

// The host of an authority, bracketed if IPv6, without its port; empty if
// `authority` is not a valid one. Only what can name this edge passes: DNS
// names (RFC 3986 unreserved characters), IPv4 and bracketed IPv6 literals,
// an optional all-digit port. Spaces, '/', '@', CR/LF, percent-encoding and
// the like would let a client inject into a header or a redirect.
std::string_view authorityHost(std::string_view authority);

// The origin-form of an absolute-form target ("http://h:1/p?q" -> "/p?q",
// "http://h?q" -> "/?q", "http://h" -> "/"); a fragment is dropped.
// Anything else is returned as it is. Fills `authority` with the target's
// authority (userinfo included, for the caller to refuse) when there is one.
// `storage` backs the result when it has to be built.
std::string_view originForm(std::string_view target, std::string& storage,
                            std::string_view* authority = nullptr);

}  // namespace tlsedge::http
