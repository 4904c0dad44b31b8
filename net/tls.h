// BoringSSL helpers for the whole tree: its error queue, drained in one
// place, and the memory BIOs' spare room.
//
// Call ERR_clear_error() before a call whose failure you report, then
// takeSslErrors() (or drainSslErrors() for a log line) after it fails.
//
// Thread: any; BoringSSL's error queue is per thread.
#pragma once

#include <openssl/bio.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tlsedge::net {

// What a failed call left in the queue, oldest first.
struct SslErrors {
  std::vector<uint32_t> codes;
  // "error:...:SSL routines:...; ..." (empty when the queue was).
  std::string text;

  // Whether any entry is library `lib`'s reason `reason` (ERR_LIB_*, *_R_*).
  bool has(int lib, int reason) const;
};

// Empties this thread's error queue into an SslErrors.
SslErrors takeSslErrors();

// takeSslErrors()'s text, or "no detail" when the queue was empty: for a
// message that must say something.
std::string drainSslErrors();

// A read-write memory BIO (BIO_s_mem) keeps its buffer at the largest size
// it ever held. If it holds no bytes, frees that buffer (the next write
// allocates one again) and returns true.
bool releaseEmptyMemBio(BIO* bio);

}  // namespace tlsedge::net
