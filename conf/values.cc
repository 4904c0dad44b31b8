#include "conf/values.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdint>
#include <filesystem>

#include "base/ascii.h"

namespace tlsedge::conf {
namespace {

// Quotes user text in messages, shortened so a 300-character label does not
// bury the message.
std::string quote(std::string_view text) {
  constexpr size_t kMax = 24;
  if (text.size() <= kMax) return "`" + std::string(text) + "`";
  return "`" + std::string(text.substr(0, kMax)) + "...`";
}

bool allDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

Result<uint16_t> parsePort(std::string_view text, int minPort) {
  if (text.empty()) return makeError("missing port after `:`");
  if (!allDigits(text)) return makeError("port " + quote(text) + " is not a number");
  unsigned long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535 ||
      value < static_cast<unsigned long>(minPort)) {
    return makeError("port " + std::string(text) + " is out of range (" + std::to_string(minPort) +
                     "..65535)");
  }
  return static_cast<uint16_t>(value);
}

// "HOST:PORT" or "[IPv6]:PORT" split at its port (a bracketed host is
// checked to be a numeric IPv6 address); `expected` completes the message
// for a missing port.
struct HostPort {
  std::string_view host;  // without the brackets
  std::string_view port;
  bool bracketed = false;
};

Result<HostPort> splitHostPort(std::string_view text, const std::string& expected) {
  HostPort out;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return makeError("missing `]` after the IPv6 address");
    out.host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return makeError("missing `:PORT` after `]`");
    }
    out.port = text.substr(close + 2);
    in6_addr addr{};
    if (inet_pton(AF_INET6, std::string(out.host).c_str(), &addr) != 1) {
      return makeError(quote(out.host) + " is not a numeric IPv6 address");
    }
    out.bracketed = true;
    return out;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return makeError("missing `:PORT`; expected " + expected);
  out.host = text.substr(0, colon);
  out.port = text.substr(colon + 1);
  if (out.host.find(':') != std::string_view::npos) {
    return makeError("an IPv6 address needs brackets, e.g. [::1]:443");
  }
  return out;
}

Status checkLabel(std::string_view label) {
  if (label.empty()) return makeError("empty label (two dots in a row, or a leading dot)");
  for (char c : label) {
    const auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') continue;
    if (c == '*') {
      return makeError("`*` is only allowed as the whole leftmost label (`*.example.com`)");
    }
    if (u >= 0x80) {
      return makeError("non-ASCII character; write internationalized names in their xn-- form");
    }
    if (u < 0x20 || u == 0x7f) return makeError("control character in host name");
    return makeError("invalid character `" + std::string(1, c) +
                     "`; labels use letters, digits and `-`");
  }
  if (label.front() == '-' || label.back() == '-') {
    return makeError("label " + quote(label) + " starts or ends with `-`");
  }
  // RFC 1035 section 2.3.4: a label is at most 63 octets.
  if (label.size() > 63) {
    return makeError("label " + quote(label) + " is " + std::to_string(label.size()) +
                     " characters long; at most 63 are allowed");
  }
  return Ok{};
}

}  // namespace

Result<SocketAddress> parseSocketAddress(std::string_view text, int minPort) {
  SocketAddress out;
  out.text = std::string(text);
  const std::string example = minPort == 0 ? "0.0.0.0:443 or [::]:443" : "127.0.0.1:8080";
  if (text.empty()) return makeError("empty address; expected IP:PORT, e.g. " + example);
  auto split = splitHostPort(text, "IP:PORT, e.g. " + example);
  if (!split) return split.error();
  if (split->bracketed) {
    out.ipv6 = true;
  } else {
    in_addr addr{};
    if (inet_pton(AF_INET, std::string(split->host).c_str(), &addr) != 1) {
      return makeError(quote(split->host) +
                       " is not a numeric IPv4 address (names are not resolved); e.g. " + example);
    }
  }
  auto portValue = parsePort(split->port, minPort);
  if (!portValue) return portValue.error();
  out.host = std::string(split->host);
  out.port = *portValue;
  return out;
}

Result<IpNetwork> parseIpNetwork(std::string_view text) {
  IpNetwork out;
  out.text = std::string(text);
  const size_t slash = text.find('/');
  const std::string address(text.substr(0, slash));
  if (inet_pton(AF_INET, address.c_str(), out.bytes.data()) == 1) {
    out.prefix = 32;
  } else if (inet_pton(AF_INET6, address.c_str(), out.bytes.data()) == 1) {
    out.ipv6 = true;
    out.prefix = 128;
  } else {
    return makeError(quote(address) +
                     " is not a numeric IPv4 or IPv6 address; expected a network "
                     "such as 10.0.0.0/8 or 2001:db8::/32, or one address");
  }
  if (slash != std::string_view::npos) {
    const std::string_view bits = text.substr(slash + 1);
    int prefix = -1;
    auto [end, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
    if (bits.empty() || ec != std::errc() || end != bits.data() + bits.size() || prefix < 0 ||
        prefix > out.prefix) {
      return makeError("prefix " + quote(bits) + " is not 0.." + std::to_string(out.prefix));
    }
    out.prefix = prefix;
  }
  for (int bit = out.prefix; bit < (out.ipv6 ? 128 : 32); ++bit) {
    if ((out.bytes[static_cast<size_t>(bit / 8)] >> (7 - bit % 8)) & 1) {
      return makeError(quote(text) + " has bits set past its /" + std::to_string(out.prefix) +
                       " prefix: write the network's own address");
    }
  }
  return out;
}

Result<bool> parseEndpointUrl(std::string_view text) {
  const std::string expected = "expected http://HOST:PORT or https://HOST:PORT";
  std::string_view rest = text;
  bool https = false;
  if (rest.starts_with("https://")) {
    https = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return makeError(expected + ", got " + quote(text));
  }
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return makeError("no path, query or user info here; " + expected + ", got " + quote(text));
  }
  auto split = splitHostPort(rest, "HOST:PORT, e.g. etcd1.example:2379");
  if (!split) return split.error();
  if (!split->bracketed) {
    auto name = normalizeHostName(split->host);
    if (!name) return makeError("host " + quote(split->host) + ": " + name.error().message);
    if (name->starts_with("*.")) return makeError("host " + quote(split->host) + ": a wildcard");
  }
  auto port = parsePort(split->port, 1);
  if (!port) return port.error();
  return https;
}

std::string canonicalAddress(const SocketAddress& address) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (address.ipv6) {
    in6_addr addr{};
    if (inet_pton(AF_INET6, address.host.c_str(), &addr) == 1 &&
        inet_ntop(AF_INET6, &addr, buf, sizeof buf) != nullptr) {
      return "[" + std::string(buf) + "]:" + std::to_string(address.port);
    }
  }
  return address.host + ":" + std::to_string(address.port);
}

Result<std::string> normalizeHostName(std::string_view text) {
  std::string name = ascii::lowered(text);
  if (!name.empty() && name.back() == '.') name.pop_back();
  if (name.empty()) return makeError("empty host name");
  if (name == "*") return makeError("a bare `*` is not a host name; write `*.example.com`");
  // RFC 1035 section 2.3.4: 255 octets on the wire is 253 characters of text.
  if (name.size() > 253) {
    return makeError("host name is " + std::to_string(name.size()) +
                     " characters long; at most 253 are allowed");
  }
  std::string_view rest(name);
  if (rest.starts_with("*.")) rest.remove_prefix(2);
  while (true) {
    const size_t dot = rest.find('.');
    auto checked = checkLabel(rest.substr(0, dot));
    if (!checked) return checked.error();
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  return name;
}

Result<Duration> parseDuration(std::string_view text) {
  const std::string hint =
      "expected seconds as an integer, or a number with a unit ms, s, m, h, d "
      "(e.g. 250ms, 30s, 5m, 1h, 30d)";
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view number = text.substr(0, digits);
  const std::string_view unit = text.substr(digits);
  if (number.empty()) return makeError("bad duration " + quote(text) + "; " + hint);
  int64_t scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60 * 1000;
  } else if (unit == "h") {
    scale = 3600 * 1000;
  } else if (unit == "d") {
    scale = 24 * 3600 * 1000;
  } else {
    return makeError("bad duration " + quote(text) + "; " + hint);
  }
  // 10^9 of any unit fits in int64 milliseconds; nobody means more.
  constexpr int64_t kMaxNumber = 1000000000;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size() || value > kMaxNumber) {
    return makeError("duration " + quote(text) + " is too large");
  }
  return Duration(value * scale);
}

Result<uint64_t> parseSize(std::string_view text) {
  const std::string hint =
      "expected bytes as an integer, or a number with a unit k, m, g (e.g. 16k, 1m)";
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view number = text.substr(0, digits);
  const std::string_view unit = text.substr(digits);
  if (number.empty()) return makeError("bad size " + quote(text) + "; " + hint);
  int shift = 0;
  if (unit.empty()) {
    shift = 0;
  } else if (unit == "k" || unit == "K" || unit == "KiB") {
    shift = 10;
  } else if (unit == "m" || unit == "M" || unit == "MiB") {
    shift = 20;
  } else if (unit == "g" || unit == "G" || unit == "GiB") {
    shift = 30;
  } else {
    return makeError("bad size " + quote(text) + "; " + hint);
  }
  constexpr uint64_t kMaxNumber = uint64_t{1} << 40;  // a TiB of units is already absurd
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size() || value > kMaxNumber) {
    return makeError("size " + quote(text) + " is too large");
  }
  return value << shift;
}

Status checkName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return makeError("name must be 1.." + std::to_string(kMaxNameLength) +
                     " characters long, got " + std::to_string(name.size()));
  }
  for (char c : name) {
    if (ascii::isAlnum(c) || c == '.' || c == '_' || c == '-') {
      continue;
    }
    return makeError("name " + quote(name) + " has an invalid character; use A-Z a-z 0-9 . _ -");
  }
  return Ok{};
}

std::string resolvePath(const std::string& baseDir, const std::string& path) {
  const std::filesystem::path p(path);
  if (p.is_absolute()) return p.lexically_normal().string();
  return (std::filesystem::path(baseDir) / p).lexically_normal().string();
}

}  // namespace tlsedge::conf
