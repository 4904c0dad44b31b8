// PEM text -> DER blocks, with messages an operator can act on.
//
// BoringSSL's PEM reader reports a bare "NO_START_LINE" for most mistakes
// (DER instead of PEM, a truncated paste, a stray character); this scanner
// says which line and which block instead. Internal to certstore.
//
// Thread: any (pure function).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tlsedge::certstore {

struct PemBlock {
  std::string label;         // "CERTIFICATE", "PRIVATE KEY", "EC PARAMETERS" ...
  std::vector<uint8_t> der;  // decoded body
  bool encrypted = false;    // RFC 1421 "Proc-Type: 4,ENCRYPTED" header present
  int line = 0;              // 1-based line of the BEGIN line
};

// Splits `text` into its PEM blocks, in order. Text between blocks is ignored
// (OpenSSL writes explanatory text there). Refuses binary input (DER), a
// BEGIN line without its END line, mismatched END labels and bad base64.
// Messages start with `source`; `derHint` is the conversion command suggested
// when the input is DER. An input without any block yields an empty vector.
Result<std::vector<PemBlock>> parsePem(std::string_view text, std::string_view source,
                                       std::string_view derHint);

}  // namespace tlsedge::certstore
