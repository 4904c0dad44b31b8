// FleetKey: the fleet key ring, which seals the private keys fleet mode
// keeps in etcd (AES-256-GCM), so that etcd and its backups never hold one
// in the clear (issue 17).
//
// The key file (`storage.etcd.key_file`, mode 0600: refused when group or
// others may read or write it) is text, one key a line:
//
//     # comment
//     k20261206 6Jq1...base64 of 32 random bytes...=
//     k20260601 Zm9v...
//
// An id is 1 to 32 characters of [A-Za-z0-9._-], unique in the file. The
// first key seals; every key opens. Rotation: put a new key first, keep the
// old ones until every value is sealed again under the new one.
// `tlsedge fleet-key new` prints a new line (generateKeyLine).
//
// A sealed value says which key sealed it:
//
//     "tlsedge-sealed\x01"  magic and format version (15 bytes)
//     id length (1 byte), id
//     nonce (12 random bytes)
//     ciphertext, then the 16-byte GCM tag
//
// The caller's associated data (fleet mode: the value's etcd key) and the
// header before the nonce are authenticated with it: a sealed value copied
// under another key, or with its id changed, does not open.
//
// Errors never contain key material, from the file or from a value.
// Key bytes are zeroed when the ring is destroyed (OPENSSL_cleanse).
//
// Thread: load() reads a file (blocking: control loop, thread pool or CLI,
// never a worker); a loaded ring is immutable, and seal and open are safe
// from several threads at once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tlsedge::fleet {

class FleetKey {
 public:
  static constexpr size_t kKeySize = 32;    // AES-256
  static constexpr size_t kNonceSize = 12;  // GCM's 96-bit nonce
  static constexpr size_t kMaxIdLength = 32;

  // Reads the key file at `path`. Errors: ErrorKind::kInvalid for "fleet
  // key PATH: mode 0644, must not be readable by group or others (chmod
  // 600)", "fleet key PATH:LINE: what is wrong with the line", "fleet key
  // PATH: no key ..."; kNotFound when there is no such file; kFailed when
  // it cannot be read.
  static Result<FleetKey> load(const std::string& path);
  // The same checks on text already read (no mode check); `source` names it
  // in messages and in open()'s unknown-key error.
  static Result<FleetKey> parse(std::string_view text, const std::string& source);

  FleetKey(FleetKey&&) = default;
  FleetKey& operator=(FleetKey&&) = default;
  FleetKey(const FleetKey&) = delete;
  FleetKey& operator=(const FleetKey&) = delete;
  ~FleetKey() = default;  // Key's destructor zeroes each key

  // `plaintext` sealed under the first key, with `aad` authenticated.
  Result<std::string> seal(std::string_view plaintext, std::string_view aad) const;
  // A value seal() made, under whichever key of the ring its id names, with
  // the same `aad`. ErrorKind::kInvalid: not a sealed value, truncated,
  // sealed with a key this ring does not hold, or it does not open (wrong
  // key, wrong `aad`, altered bytes).
  Result<std::string> open(std::string_view sealed, std::string_view aad) const;
  // Whether `value` starts with the sealed format's magic.
  static bool isSealed(std::string_view value);
  // The id of the key that sealed `value` ("" when it is not sealed or
  // too short to say).
  static std::string_view sealedWith(std::string_view value);

  // The id of the key that seals (the file's first).
  const std::string& sealingId() const { return keys_.front().id; }
  // The ids, in file order.
  std::vector<std::string> ids() const;
  // What load() or parse() was given to name the file.
  const std::string& source() const { return source_; }

 private:
  struct Key {
    std::string id;
    std::array<uint8_t, kKeySize> bytes{};
    Key() = default;
    Key(const Key&) = default;
    Key& operator=(const Key&) = default;
    ~Key();  // zeroes `bytes`
  };

  FleetKey() = default;
  const Key* find(std::string_view id) const;

  std::string source_;
  std::vector<Key> keys_;  // at least one
};

// Whether `id` may name a key: 1 to kMaxIdLength characters of
// [A-Za-z0-9._-]. The error says what is wrong (and echoes nothing).
Status checkKeyId(std::string_view id);

// A new key line for a key file: "ID BASE64" (32 bytes from RAND_bytes),
// without a newline. `id` must pass checkKeyId.
std::string generateKeyLine(std::string_view id);

}  // namespace tlsedge::fleet
