// Parsers for the scalar formats of the configuration: socket addresses,
// endpoint URLs, host names, durations, object names and paths.
//
// Internal to conf/. Pure functions, no YAML: each returns the value or an
// Error whose message says what is wrong with the text (the caller adds the
// file position and key).
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "conf/config.h"

namespace tlsedge::conf {

// "a.b.c.d:PORT" or "[v6]:PORT", numeric only (nothing is resolved), with
// minPort <= PORT <= 65535.
Result<SocketAddress> parseSocketAddress(std::string_view text, int minPort);

// A service's URL, "http://HOST:PORT" or "https://HOST:PORT" (etcd's
// endpoints): HOST a DNS name or numeric IPv4 address, or a numeric IPv6
// one in brackets; PORT 1..65535; nothing after it (no path, query or user
// info). Returns whether it is https.
Result<bool> parseEndpointUrl(std::string_view text);

// "10.0.0.0/8", "2001:db8::/32", or one address ("192.0.2.7", "::1"):
// numeric, the prefix within the family's bits, no host bits set.
Result<IpNetwork> parseIpNetwork(std::string_view text);

// A canonical spelling of the address ("[::]:443" and "[0::0]:443" agree),
// for detecting duplicates.
std::string canonicalAddress(const SocketAddress& address);

// A DNS name or a one-label wildcard "*.name": returns it lower-case without
// a trailing dot. Labels are [a-z0-9-], 1..63 characters, not starting or
// ending with '-'; the whole name is at most 253 characters.
Result<std::string> normalizeHostName(std::string_view text);

// An integer number of seconds ("30") or a number with a unit: "250ms",
// "30s", "5m", "1h", "30d".
Result<Duration> parseDuration(std::string_view text);

// A byte count: an integer, or a number with a binary unit k, m, g (also
// KiB, MiB, GiB): "16k" = 16384.
Result<uint64_t> parseSize(std::string_view text);

// Names of certificates, sites and upstreams: 1..64 of [A-Za-z0-9._-].
inline constexpr size_t kMaxNameLength = 64;
Status checkName(std::string_view name);

// `path` if absolute, else `baseDir`/`path`, lexically normalised.
std::string resolvePath(const std::string& baseDir, const std::string& path);

}  // namespace tlsedge::conf
