#include "net/tls.h"

#include <openssl/err.h>

namespace tlsedge::net {

std::string drainSslErrors() {
  std::string out;
  while (uint32_t code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail" : out;
}

}  // namespace tlsedge::net
