#include "certstore/credentials.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pool.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <string_view>

#include "base/ascii.h"
#include "base/time.h"
#include "certstore/chain.h"
#include "certstore/files.h"
#include "certstore/pem.h"
#include "certstore/private_key.h"
#include "certstore/x509_text.h"
#include "net/tls.h"

namespace tlsedge::certstore {
namespace {

constexpr std::string_view kCertDerHint = "openssl x509 -inform der -in cert.der -out cert.pem";
constexpr std::string_view kKeyDerHint = "openssl pkey -inform der -in key.der -out key.pem";
// A chain is a few KB; anything this large is the wrong file.
constexpr size_t kMaxPemBytes = 1 << 20;

using ascii::equalsIgnoreCase;

// Parsing an X.509 certificate costs about as much as the rest of a stored
// load, and a store of many certificates has few distinct intermediates
// (each pooled as one buffer). So each thread keeps the last few
// intermediates it parsed, keyed by pooled buffer; the entry holds a
// reference to the buffer, so no other buffer can take its address. Parsed
// X509s are only read (BoringSSL locks its lazily filled caches).
class IntermediateCache {
 public:
  bssl::UniquePtr<X509> parse(CRYPTO_BUFFER* buffer) {
    for (Entry& e : entries_) {
      if (e.buffer.get() == buffer) {
        X509_up_ref(e.x509.get());
        return bssl::UniquePtr<X509>(e.x509.get());
      }
    }
    bssl::UniquePtr<X509> x509(X509_parse_from_buffer(buffer));
    if (!x509) return nullptr;
    Entry& e = entries_[next_++ % entries_.size()];
    CRYPTO_BUFFER_up_ref(buffer);
    e.buffer.reset(buffer);
    X509_up_ref(x509.get());
    e.x509.reset(x509.get());
    return x509;
  }

 private:
  struct Entry {
    bssl::UniquePtr<CRYPTO_BUFFER> buffer;
    bssl::UniquePtr<X509> x509;
  };
  std::array<Entry, 8> entries_;
  size_t next_ = 0;
};

thread_local IntermediateCache tIntermediates;

void appendLine(std::string* out, const std::string& line) {
  if (!out->empty()) out->push_back('\n');
  out->append(line);
}

// The CERTIFICATE blocks of the chain file, as pooled buffers and parsed X509s.
Result<std::vector<ChainCert>> readCertificates(const std::string& chainPem,
                                                CRYPTO_BUFFER_POOL* pool, const std::string& source,
                                                std::vector<std::string>* notes) {
  auto blocks = parsePem(chainPem, source, kCertDerHint);
  if (!blocks.ok()) return blocks.error();
  size_t total = 0;
  std::string others;
  for (const PemBlock& block : *blocks) {
    if (block.label == "CERTIFICATE") {
      ++total;
    } else {
      others +=
          (others.empty() ? "" : ", ") + block.label + " (line " + std::to_string(block.line) + ")";
    }
  }
  if (total == 0) {
    return makeError(source + ": no certificate found (expected '-----BEGIN CERTIFICATE-----'" +
                     (others.empty() ? std::string(")") : "; found only " + others + ")"));
  }
  if (total > kMaxChainCertificates) {
    return makeError(source + ": " + std::to_string(total) + " certificates; a chain has at most " +
                     std::to_string(kMaxChainCertificates));
  }
  if (!others.empty())
    notes->push_back("ignored non-certificate blocks in " + source + ": " + others);

  std::vector<ChainCert> certs;
  for (const PemBlock& block : *blocks) {
    if (block.label != "CERTIFICATE") continue;
    ChainCert cert;
    cert.position = static_cast<int>(certs.size()) + 1;
    ERR_clear_error();
    // Pooled: identical intermediates across many credentials share one buffer.
    cert.der.reset(CRYPTO_BUFFER_new(block.der.data(), block.der.size(), pool));
    if (cert.der && pool != nullptr && cert.position > 1) {
      cert.x509 = tIntermediates.parse(cert.der.get());
    } else if (cert.der) {
      cert.x509.reset(X509_parse_from_buffer(cert.der.get()));
    }
    if (!cert.x509) {
      std::string errors = net::takeSslErrors().text;
      return makeError(source + ":" + std::to_string(block.line) + ": certificate " +
                       std::to_string(cert.position) + " of " + std::to_string(total) +
                       " is not a valid X.509 certificate" +
                       (errors.empty() ? std::string() : " (" + errors + ")"));
    }
    certs.push_back(std::move(cert));
  }
  return certs;
}

// Every served certificate must be inside its validity window: clients check
// the intermediates' dates as well as the leaf's (RFC 5280 section 6.1.3).
std::string checkDates(const std::vector<ChainCert>& chain, size_t total, time_t now,
                       const std::string& source) {
  std::string errors;
  for (const ChainCert& cert : chain) {
    time_t from = 0;
    time_t to = 0;
    if (!asn1ToPosix(X509_get0_notBefore(cert.x509.get()), &from) ||
        !asn1ToPosix(X509_get0_notAfter(cert.x509.get()), &to)) {
      ERR_clear_error();
      appendLine(&errors, certLabel(source, cert, total) + " has unreadable validity dates");
      continue;
    }
    if (now >= from && now <= to) continue;  // (the text below is for refusals only)
    std::string window =
        "valid from " + utc::format(from) + " to " + utc::format(to) + "; now " + utc::format(now);
    if (now < from) {
      appendLine(&errors, certLabel(source, cert, total) + " is not valid yet (" + window + ")");
    } else if (now > to) {
      appendLine(&errors, certLabel(source, cert, total) + " expired on " + utc::format(to) + " (" +
                              window + ")");
    }
  }
  return errors;
}

}  // namespace

bool Credentials::covers(const std::string& host) const {
  std::string_view h = host;
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);
  if (h.empty()) return false;
  size_t dot = h.find('.');
  for (const std::string& san : dnsNames) {
    if (equalsIgnoreCase(san, h)) return true;
    // RFC 6125 section 6.4.3: "*" stands for exactly one whole left-most label.
    if (san.size() > 2 && san[0] == '*' && san[1] == '.' && dot != std::string_view::npos &&
        dot > 0 && equalsIgnoreCase(std::string_view(san).substr(1), h.substr(dot))) {
      return true;
    }
  }
  for (const std::string& ip : ipAddresses) {
    if (ip == h) return true;
  }
  return false;
}

Result<CredentialsPtr> parseCredentials(const std::string& name, const std::string& chainPem,
                                        const std::string& keyPem, CRYPTO_BUFFER_POOL* pool,
                                        time_t now, const std::string& chainSource,
                                        const std::string& keySource, Verify verify) {
  auto out = std::make_shared<Credentials>();
  out->name = name;

  // Parse both sides before failing, so one attempt reports both problems.
  auto certs = readCertificates(chainPem, pool, chainSource, &out->notes);
  auto keyBlocks = parsePem(keyPem, keySource, kKeyDerHint);
  Result<ParsedKey> key =
      keyBlocks.ok() ? parsePrivateKey(*keyBlocks, keySource, verify) : keyBlocks.error();
  if (!certs.ok() || !key.ok()) {
    std::string message;
    if (!certs.ok()) appendLine(&message, certs.error().message);
    if (!key.ok()) appendLine(&message, key.error().message);
    return makeError(message);
  }

  const size_t total = certs->size();
  if (Status ordered = orderChain(&*certs, key->key.get(), chainSource, keySource, &out->notes,
                                  verify == Verify::kFull);
      !ordered.ok()) {
    return ordered.error();
  }
  if (std::string dates = checkDates(*certs, total, now, chainSource); !dates.empty()) {
    return makeError(dates);
  }

  X509* leaf = (*certs)[0].x509.get();
  asn1ToPosix(X509_get0_notBefore(leaf), &out->notBefore);
  asn1ToPosix(X509_get0_notAfter(leaf), &out->notAfter);
  subjectAltNames(leaf, &out->dnsNames, &out->ipAddresses);
  if (out->dnsNames.empty() && out->ipAddresses.empty()) {
    // RFC 6125 section 6.4.4 / CA/B Baseline Requirements: clients ignore the CN.
    out->notes.push_back("the leaf has no subjectAltName; browsers will reject it for every name");
  }
  out->serialHex = serialHex(X509_get0_serialNumber(leaf));
  out->sha256Fingerprint = sha256Fingerprint(CRYPTO_BUFFER_data((*certs)[0].der.get()),
                                             CRYPTO_BUFFER_len((*certs)[0].der.get()));
  out->subject = nameText(X509_get_subject_name(leaf));
  out->issuer = nameText(X509_get_issuer_name(leaf));
  out->keyType = key->type;
  out->key = std::move(key->key);
  for (ChainCert& cert : *certs) out->chain.push_back(std::move(cert.der));
  // The TLS stack parses the leaf again, more strictly than
  // X509_parse_from_buffer: what it cannot parse would fail every handshake.
  // Store entries passed this when they were written (kFull): a store load
  // skips it (it costs about 8 us a certificate, +45% of a stored load).
  if (verify == Verify::kFull) {
    ERR_clear_error();
    static SSL_CTX* const trial = SSL_CTX_new(TLS_method());
    bssl::UniquePtr<SSL> ssl(trial != nullptr ? SSL_new(trial) : nullptr);
    if (!ssl || !installCredentials(ssl.get(), *out)) {
      return makeError(chainSource + ": the leaf certificate cannot be served (" +
                       net::drainSslErrors() + ")");
    }
  }
  ERR_clear_error();
  return CredentialsPtr(std::move(out));
}

Result<CredentialsPtr> parseLoadedCredentials(const std::string& name,
                                              const Result<std::string>& chain,
                                              const Result<std::string>& key,
                                              CRYPTO_BUFFER_POOL* pool, time_t now,
                                              const std::string& chainSource,
                                              const std::string& keySource, Verify verify) {
  std::string message;
  if (!chain.ok()) appendLine(&message, chain.error().message);
  if (!key.ok()) appendLine(&message, key.error().message);
  if (chain.ok() && chain->size() > kMaxPemBytes) {
    appendLine(&message, chainSource + ": " + std::to_string(chain->size()) +
                             " bytes is far too large for a certificate chain (wrong file?)");
  }
  if (key.ok() && key->size() > kMaxPemBytes) {
    appendLine(&message, keySource + ": " + std::to_string(key->size()) +
                             " bytes is far too large for a private key (wrong file?)");
  }
  if (!message.empty()) return makeError(message);
  return parseCredentials(name, *chain, *key, pool, now, chainSource, keySource, verify);
}

Result<CredentialsPtr> loadCredentials(const std::string& name, const std::string& certPath,
                                       const std::string& keyPath, CRYPTO_BUFFER_POOL* pool,
                                       time_t now, Verify verify) {
  return parseLoadedCredentials(name, readFile(certPath), readFile(keyPath), pool, now, certPath,
                                keyPath, verify);
}

bool installCredentials(SSL* ssl, const Credentials& credentials) {
  // On the handshake path: a stack array, no allocation. parseCredentials
  // guarantees at most kMaxChainCertificates entries.
  CRYPTO_BUFFER* buffers[kMaxChainCertificates];
  size_t n = 0;
  for (const auto& buffer : credentials.chain) {
    if (n == kMaxChainCertificates) return false;
    buffers[n++] = buffer.get();
  }
  return SSL_set_chain_and_key(ssl, buffers, n, credentials.key.get(), nullptr) == 1;
}

}  // namespace tlsedge::certstore
