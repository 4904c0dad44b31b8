// Preferred chain (`acme.preferred_chain`): a CA may offer the same
// certificate under several chains, the default one at the certificate URL
// and others behind `Link: <url>;rel="alternate"` (RFC 8555 section 7.4.2).
// The chain whose topmost certificate's issuer has the configured common
// name is chosen (as certbot and lego do); when none has, the default.
//
// Thread: the control loop (choosePreferredChain fetches through the
// client's requests); the parsing functions are pure.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "http/http_client.h"

namespace tlsedge::acme {

// The targets of every `rel="alternate"` Link header (several headers, or
// several links in one), in order. Relative references are resolved
// against `base` (the certificate URL) when they are absolute paths.
std::vector<std::string> alternateChainUrls(const http::HttpResponse& response,
                                            const std::string& base);

// The common name of the issuer of a PEM chain's last certificate (the one
// nearest the root); empty when the chain has none or does not parse.
std::string topIssuerName(const std::string& chainPem);

// Fetches one alternate chain (a POST-as-GET); answers its body or why not.
using FetchChain =
    std::function<void(const std::string& url, std::function<void(Result<std::string>)> done)>;
// `chosen`: the PEM to store and a sentence saying which chain and why.
using ChainChosen = std::function<void(std::string pem, std::string why)>;

// Picks the chain for `preferred` among `defaultPem` and the alternates
// (fetched one by one until one matches; one that fails to download is
// skipped). Calls `chosen` inside this call when nothing needs fetching
// (the default matches, or there are no alternates); when a `fetch`
// callback is dropped unrun, `chosen` never runs.
void choosePreferredChain(const std::string& preferred, std::string defaultPem,
                          std::vector<std::string> alternates, FetchChain fetch,
                          ChainChosen chosen);

}  // namespace tlsedge::acme
