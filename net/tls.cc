#include "net/tls.h"

#include <openssl/err.h>

namespace tlsedge::net {

bool SslErrors::has(int lib, int reason) const {
  for (uint32_t code : codes) {
    if (ERR_GET_LIB(code) == lib && ERR_GET_REASON(code) == reason) return true;
  }
  return false;
}

SslErrors takeSslErrors() {
  SslErrors errors;
  while (uint32_t code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    if (!errors.text.empty()) errors.text += "; ";
    errors.text += buf;
    errors.codes.push_back(code);
  }
  return errors;
}

std::string drainSslErrors() {
  std::string text = takeSslErrors().text;
  return text.empty() ? "no detail" : text;
}

}  // namespace tlsedge::net
