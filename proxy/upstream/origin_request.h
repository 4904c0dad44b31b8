// originRequestHead: the HTTP/1.1 request head an origin gets for a
// client's request, whichever protocol the client spoke: the one place the
// edge decides what crosses to the origin.
//  - Request line: the method and the origin-form target, HTTP/1.1.
//  - Host: the authority the request was routed by (RFC 9112 3.2.2), never
//    a client's Host copied.
//  - The client's fields, except the hop-by-hop ones (Connection and what
//    it names, RFC 9110 7.6.1), the framing, Host and X-Forwarded-*; an
//    HTTP/1.0 client's Expect is ignored (RFC 9110 10.1.1).
//  - The framing this hop sends: Transfer-Encoding: chunked or
//    Content-Length, from what the client's request carries. Host and the
//    framing are written, never copied: a Connection option naming either
//    changes nothing.
//  - An upgrade the site tunnels: Connection: upgrade and Upgrade with the
//    protocols offered.
//  - X-Forwarded-For, -Proto and -Host: set by the edge alone (a client's
//    own are dropped, never appended to: the trust boundary).
//
// Thread: any (pure).
#pragma once

#include <string>
#include <string_view>

#include "http/http_parser.h"

namespace tlsedge::proxy {

struct OriginRequest {
  const http::MessageHead& head;  // the client's request (method, fields, framing)
  std::string_view target;        // origin-form: "/path?query"
  std::string_view authority;     // what it was routed by
  std::string_view clientIp;      // X-Forwarded-For
  bool https = false;             // X-Forwarded-Proto
  bool keepExpect = true;         // false for an HTTP/1.0 client
  std::string_view upgradeOffer;  // "websocket"; empty: no upgrade asked
};

std::string originRequestHead(const OriginRequest& request);

}  // namespace tlsedge::proxy
