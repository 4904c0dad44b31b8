#include "fleet/fleet_key.h"

#include <openssl/aead.h>
#include <openssl/base64.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "certstore/files.h"
#include "net/tls.h"

namespace tlsedge::fleet {
namespace {

constexpr std::string_view kMagic{"tlsedge-sealed\x01", 15};
constexpr size_t kTagSize = 16;  // EVP_AEAD_DEFAULT_TAG_LENGTH of AES-GCM

bool isIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool isBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// The fields of a line, split on blanks.
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && isBlank(line[i])) ++i;
    const size_t start = i;
    while (i < line.size() && !isBlank(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// Owns a scratch buffer of key material and zeroes it on the way out.
struct Wiped {
  std::string bytes;
  ~Wiped() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

// "what group or others may do", for the mode refusal.
std::string exposure(mode_t mode) {
  if ((mode & 044) != 0) return "readable";
  if ((mode & 022) != 0) return "writable";
  return "usable";
}

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Runs one AES-256-GCM seal or open under `key`. BoringSSL's error queue
// is left empty (rule 7): the callers' messages say what failed.
template <typename Call>
bool withAead(const uint8_t* key, Call call) {
  ERR_clear_error();
  bssl::ScopedEVP_AEAD_CTX ctx;
  const bool ok = EVP_AEAD_CTX_init(ctx.get(), EVP_aead_aes_256_gcm(), key, FleetKey::kKeySize,
                                    EVP_AEAD_DEFAULT_TAG_LENGTH, nullptr) == 1 &&
                  call(ctx.get());
  if (!ok) (void)net::takeSslErrors();
  return ok;
}

}  // namespace

FleetKey::Key::~Key() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

Status checkKeyId(std::string_view id) {
  if (id.empty() || id.size() > FleetKey::kMaxIdLength) {
    return makeError("a key id is 1 to " + std::to_string(FleetKey::kMaxIdLength) +
                         " characters, got " + std::to_string(id.size()),
                     ErrorKind::kInvalid);
  }
  for (char c : id) {
    if (!isIdChar(c)) {
      return makeError("a key id is made of [A-Za-z0-9._-] only", ErrorKind::kInvalid);
    }
  }
  return Ok{};
}

Result<FleetKey> FleetKey::load(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return makeError("fleet key " + path + ": " + std::strerror(err),
                     err == ENOENT ? ErrorKind::kNotFound : ErrorKind::kFailed);
  }
  if ((st.st_mode & 077) != 0) {
    return makeError("fleet key " + path + ": mode " + octal(st.st_mode) + ", must not be " +
                         exposure(st.st_mode) + " by group or others (chmod 600)",
                     ErrorKind::kInvalid);
  }
  auto text = certstore::readFile(path);
  if (!text) return makeError("fleet key: " + text.error().message, text.error().kind);
  Wiped wiped{std::move(*text)};
  return parse(wiped.bytes, path);
}

Result<FleetKey> FleetKey::parse(std::string_view text, const std::string& source) {
  FleetKey ring;
  ring.source_ = source;
  size_t number = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++number;
    const std::vector<std::string_view> parts = fields(line);
    if (parts.empty() || parts[0].front() == '#') continue;
    auto bad = [&](const std::string& what) {
      return makeError("fleet key " + source + ":" + std::to_string(number) + ": " + what,
                       ErrorKind::kInvalid);
    };
    // Nothing of the line is echoed but a valid id: a key pasted into the
    // wrong place must not end up in a log.
    if (parts.size() != 2) {
      return bad("expected `ID KEY` (an id, a blank, base64 of " + std::to_string(kKeySize) +
                 " bytes), got " + std::to_string(parts.size()) +
                 (parts.size() == 1 ? " field" : " fields"));
    }
    if (Status valid = checkKeyId(parts[0]); !valid) return bad(valid.error().message);
    if (ring.find(parts[0]) != nullptr) {
      return bad("key id '" + std::string(parts[0]) + "' is used twice");
    }
    Key key;
    key.id = std::string(parts[0]);
    size_t maxLen = 0;
    Wiped decoded;
    if (!EVP_DecodedLength(&maxLen, parts[1].size())) maxLen = parts[1].size();
    decoded.bytes.resize(maxLen);
    size_t len = 0;
    ERR_clear_error();
    if (!EVP_DecodeBase64(reinterpret_cast<uint8_t*>(decoded.bytes.data()), &len, maxLen,
                          reinterpret_cast<const uint8_t*>(parts[1].data()), parts[1].size())) {
      (void)net::takeSslErrors();  // the message says what is wrong
      return bad("key '" + key.id + "': not base64");
    }
    if (len != kKeySize) {
      return bad("key '" + key.id + "': " + std::to_string(len) + " bytes, must be " +
                 std::to_string(kKeySize));
    }
    std::memcpy(key.bytes.data(), decoded.bytes.data(), kKeySize);
    ring.keys_.push_back(std::move(key));
  }
  if (ring.keys_.empty()) {
    return makeError(
        "fleet key " + source + ": no key (a line `ID KEY`; `tlsedge fleet-key new` prints one)",
        ErrorKind::kInvalid);
  }
  return ring;
}

const FleetKey::Key* FleetKey::find(std::string_view id) const {
  for (const Key& key : keys_) {
    if (key.id == id) return &key;
  }
  return nullptr;
}

std::vector<std::string> FleetKey::ids() const {
  std::vector<std::string> out;
  for (const Key& key : keys_) out.push_back(key.id);
  return out;
}

bool FleetKey::isSealed(std::string_view value) { return value.starts_with(kMagic); }

std::string_view FleetKey::sealedWith(std::string_view value) {
  if (!isSealed(value) || value.size() < kMagic.size() + 1) return {};
  const size_t idLen = static_cast<uint8_t>(value[kMagic.size()]);
  if (value.size() < kMagic.size() + 1 + idLen) return {};
  return value.substr(kMagic.size() + 1, idLen);
}

Result<std::string> FleetKey::seal(std::string_view plaintext, std::string_view aad) const {
  const Key& key = keys_.front();
  std::string out(kMagic);
  out += static_cast<char>(key.id.size());
  out += key.id;
  // The header is authenticated with the caller's data (after it, so that
  // the id's length byte keeps the two apart).
  const std::string associated = out + std::string(aad);
  const size_t nonceAt = out.size();
  out.resize(nonceAt + kNonceSize + plaintext.size() + kTagSize);
  auto* nonce = reinterpret_cast<uint8_t*>(out.data() + nonceAt);
  RAND_bytes(nonce, kNonceSize);
  uint8_t* sealed = nonce + kNonceSize;
  size_t sealedLen = 0;
  const bool ok = withAead(key.bytes.data(), [&](EVP_AEAD_CTX* ctx) {
    return EVP_AEAD_CTX_seal(ctx, sealed, &sealedLen, plaintext.size() + kTagSize, nonce,
                             kNonceSize, reinterpret_cast<const uint8_t*>(plaintext.data()),
                             plaintext.size(), reinterpret_cast<const uint8_t*>(associated.data()),
                             associated.size()) == 1;
  });
  if (!ok) return makeError("cannot seal under fleet key '" + key.id + "'");
  out.resize(nonceAt + kNonceSize + sealedLen);
  return out;
}

Result<std::string> FleetKey::open(std::string_view sealed, std::string_view aad) const {
  if (!isSealed(sealed)) return makeError("not a sealed value", ErrorKind::kInvalid);
  auto truncated = [&] {
    return makeError("sealed value truncated (" + std::to_string(sealed.size()) + " bytes)",
                     ErrorKind::kInvalid);
  };
  if (sealed.size() < kMagic.size() + 1) return truncated();
  const size_t idLen = static_cast<uint8_t>(sealed[kMagic.size()]);
  const size_t nonceAt = kMagic.size() + 1 + idLen;
  if (sealed.size() < nonceAt + kNonceSize + kTagSize) return truncated();
  const std::string_view id = sealed.substr(kMagic.size() + 1, idLen);
  if (!checkKeyId(id)) return makeError("sealed value has a malformed key id", ErrorKind::kInvalid);
  const Key* key = find(id);
  if (key == nullptr) {
    return makeError(
        "sealed with fleet key '" + std::string(id) + "', which " + source_ + " does not hold",
        ErrorKind::kInvalid);
  }
  const std::string associated = std::string(sealed.substr(0, nonceAt)) + std::string(aad);
  const auto* nonce = reinterpret_cast<const uint8_t*>(sealed.data() + nonceAt);
  const std::string_view body = sealed.substr(nonceAt + kNonceSize);
  std::string out(body.size(), '\0');
  size_t outLen = 0;
  const bool ok = withAead(key->bytes.data(), [&](EVP_AEAD_CTX* ctx) {
    return EVP_AEAD_CTX_open(ctx, reinterpret_cast<uint8_t*>(out.data()), &outLen, out.size(),
                             nonce, kNonceSize, reinterpret_cast<const uint8_t*>(body.data()),
                             body.size(), reinterpret_cast<const uint8_t*>(associated.data()),
                             associated.size()) == 1;
  });
  if (!ok) {
    OPENSSL_cleanse(out.data(), out.size());
    return makeError(
        "sealed value does not open under fleet key '" + key->id + "': wrong key or altered",
        ErrorKind::kInvalid);
  }
  out.resize(outLen);
  return out;
}

std::string generateKeyLine(std::string_view id) {
  uint8_t key[FleetKey::kKeySize];
  RAND_bytes(key, sizeof key);
  size_t size = 0;
  EVP_EncodedLength(&size, sizeof key);
  Wiped encoded;
  encoded.bytes.resize(size);
  const size_t n =
      EVP_EncodeBlock(reinterpret_cast<uint8_t*>(encoded.bytes.data()), key, sizeof key);
  OPENSSL_cleanse(key, sizeof key);
  std::string line(id);
  line += ' ';
  line.append(encoded.bytes, 0, n);
  return line;
}

}  // namespace tlsedge::fleet
