#include "net/tls.h"

#include <openssl/buf.h>
#include <openssl/err.h>
#include <openssl/mem.h>

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

bool releaseEmptyMemBio(BIO* bio) {
  // A read-write memory BIO keeps its bytes at the start of its BUF_MEM
  // (a read moves the rest down), so an empty one holds only spare room.
  BUF_MEM* mem = nullptr;
  if (BIO_get_mem_ptr(bio, &mem) != 1 || mem == nullptr || mem->length != 0) return false;
  OPENSSL_free(mem->data);
  mem->data = nullptr;
  mem->max = 0;
  return true;
}

}  // namespace tlsedge::net
