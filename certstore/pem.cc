#include "certstore/pem.h"

#include <openssl/base64.h>

#include <cstdio>

namespace tlsedge::certstore {
namespace {

constexpr std::string_view kBegin = "-----BEGIN ";
constexpr std::string_view kEnd = "-----END ";
constexpr std::string_view kDashes = "-----";

std::string_view trimRight(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string_view trim(std::string_view s) {
  s = trimRight(s);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

// Returns the label of "-----BEGIN X-----" / "-----END X-----", or false.
bool boundary(std::string_view line, std::string_view prefix, std::string_view* label) {
  if (line.substr(0, prefix.size()) != prefix || line.size() < prefix.size() + kDashes.size() ||
      line.substr(line.size() - kDashes.size()) != kDashes) {
    return false;
  }
  *label = line.substr(prefix.size(), line.size() - prefix.size() - kDashes.size());
  return true;
}

// DER starts with a SEQUENCE tag (0x30); any control byte other than
// whitespace means the input is not text either.
bool looksBinary(std::string_view text) {
  if (!text.empty() && static_cast<unsigned char>(text[0]) == 0x30) return true;
  for (unsigned char c : text.substr(0, 4096)) {
    if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') return true;
  }
  return false;
}

std::string where(std::string_view source, int line) {
  return std::string(source) + ":" + std::to_string(line) + ": ";
}

}  // namespace

Result<std::vector<PemBlock>> parsePem(std::string_view text, std::string_view source,
                                       std::string_view derHint) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM from editors
  if (looksBinary(text)) {
    char first[8];
    std::snprintf(first, sizeof first, "0x%02X", static_cast<unsigned char>(text[0]));
    return makeError(std::string(source) + ": looks like binary DER, not PEM (first byte " + first +
                     "); convert it first (" + std::string(derHint) + ")");
  }

  std::vector<PemBlock> blocks;
  PemBlock* open = nullptr;  // block whose END line we are looking for
  std::string body;
  bool inHeaders = false;
  int lineNo = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = trim(text.substr(pos, eol - pos));
    pos = eol + 1;
    ++lineNo;

    std::string_view label;
    if (open == nullptr) {
      if (boundary(line, kBegin, &label)) {
        blocks.push_back(PemBlock{std::string(label), {}, false, lineNo});
        open = &blocks.back();
        body.clear();
        inHeaders = true;
      } else if (boundary(line, kEnd, &label)) {
        return makeError(where(source, lineNo) + "PEM syntax error: '" + std::string(line) +
                         "' without a matching BEGIN line");
      }
      continue;
    }
    if (boundary(line, kBegin, &label)) {
      break;  // reported below as a missing END line
    }
    if (boundary(line, kEnd, &label)) {
      if (label != open->label) {
        return makeError(where(source, lineNo) + "PEM syntax error: '" + std::string(line) +
                         "' does not close '-----BEGIN " + open->label + "-----' (line " +
                         std::to_string(open->line) + ")");
      }
      size_t maxLen = 0;
      if (!EVP_DecodedLength(&maxLen, body.size())) maxLen = body.size();
      open->der.resize(maxLen);
      size_t outLen = 0;
      if (body.empty() ||
          !EVP_DecodeBase64(open->der.data(), &outLen, maxLen,
                            reinterpret_cast<const uint8_t*>(body.data()), body.size())) {
        return makeError(where(source, open->line) + "PEM syntax error: the base64 body of '" +
                         open->label + "' is " + (body.empty() ? "empty" : "damaged") +
                         " (truncated paste, or a stray character?)");
      }
      open->der.resize(outLen);
      open = nullptr;
      continue;
    }
    // RFC 1421 section 4.4: optional "Name: value" headers, then a blank line.
    if (inHeaders && line.find(':') != std::string_view::npos) {
      if (line.substr(0, 9) == "Proc-Type" && line.find("ENCRYPTED") != std::string_view::npos) {
        open->encrypted = true;
      }
      continue;
    }
    inHeaders = false;
    body.append(line);
  }
  if (open != nullptr) {
    return makeError(where(source, open->line) + "PEM syntax error: '-----BEGIN " + open->label +
                     "-----' has no '-----END " + open->label +
                     "-----' line (missing END line; truncated file?)");
  }
  return blocks;
}

}  // namespace tlsedge::certstore
