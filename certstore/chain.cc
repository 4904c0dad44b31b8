#include "certstore/chain.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pool.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>

#include "certstore/x509_text.h"

namespace tlsedge::certstore {
namespace {

bool sameDer(const CRYPTO_BUFFER* a, const CRYPTO_BUFFER* b) {
  return a == b ||
         (CRYPTO_BUFFER_len(a) == CRYPTO_BUFFER_len(b) &&
          std::memcmp(CRYPTO_BUFFER_data(a), CRYPTO_BUFFER_data(b), CRYPTO_BUFFER_len(a)) == 0);
}

// Link facts between every pair; chains are tiny (<= kMaxChainCertificates),
// so the O(n^2) name comparisons and the few signature checks are cheap.
struct Links {
  const std::vector<ChainCert>* certs = nullptr;
  size_t n = 0;
  std::vector<bssl::UniquePtr<EVP_PKEY>> pub;  // parsed on first use (pubOf)
  std::vector<char> pubParsed;
  std::vector<char> nameMatch;  // [i * n + j]: subject(i) == issuer(j)
  std::vector<char> signs;      // [i * n + j]: nameMatch and j's signature verifies with pub[i]

  bool issues(size_t i, size_t j) const { return signs[i * n + j] != 0; }
  bool namesIssuer(size_t i, size_t j) const { return nameMatch[i * n + j] != 0; }
  bool selfSigned(size_t i) const { return issues(i, i); }
  // Certificate i's public key (null if unreadable). Decoding an EC point
  // costs field arithmetic: a store load (no signature checks) needs only
  // the leaf candidates'.
  EVP_PKEY* pubOf(size_t i) {
    if (!pubParsed[i]) {
      pub[i].reset(X509_get_pubkey((*certs)[i].x509.get()));
      pubParsed[i] = 1;
    }
    return pub[i].get();
  }
};

Links computeLinks(const std::vector<ChainCert>& certs, bool checkSignatures) {
  Links links;
  links.certs = &certs;
  links.n = certs.size();
  links.pub.resize(links.n);
  links.pubParsed.assign(links.n, 0);
  links.nameMatch.assign(links.n * links.n, 0);
  links.signs.assign(links.n * links.n, 0);
  for (size_t i = 0; i < links.n; ++i) {
    for (size_t j = 0; j < links.n; ++j) {
      if (X509_NAME_cmp(X509_get_subject_name(certs[i].x509.get()),
                        X509_get_issuer_name(certs[j].x509.get())) != 0) {
        continue;
      }
      links.nameMatch[i * links.n + j] = 1;
      ERR_clear_error();
      if (!checkSignatures ||
          (links.pubOf(i) != nullptr && X509_verify(certs[j].x509.get(), links.pubOf(i)) == 1)) {
        links.signs[i * links.n + j] = 1;
      }
      ERR_clear_error();
    }
  }
  return links;
}

}  // namespace

std::string certLabel(std::string_view source, const ChainCert& cert, size_t total) {
  return (source.empty() ? std::string() : std::string(source) + ": ") + "certificate " +
         std::to_string(cert.position) + " of " + std::to_string(total) + " (" +
         shortName(cert.x509.get()) + ")";
}

Status orderChain(std::vector<ChainCert>* certs, EVP_PKEY* key, std::string_view chainSource,
                  std::string_view keySource, std::vector<std::string>* notes,
                  bool checkSignatures) {
  const size_t total = certs->size();
  // Full label ("chain: certificate 2 of 3 (CN=...)") where another file is
  // the subject of the sentence; the bare one after a "chain: " prefix.
  auto label = [&](const ChainCert& c) { return certLabel(chainSource, c, total); };
  auto bare = [&](const ChainCert& c) { return certLabel({}, c, total); };

  // Duplicates (the same intermediate pasted twice) are harmless: drop them.
  for (size_t i = 0; i < certs->size(); ++i) {
    for (size_t j = i + 1; j < certs->size();) {
      if (sameDer((*certs)[i].der.get(), (*certs)[j].der.get())) {
        notes->push_back(std::string(chainSource) + ": dropped " + bare((*certs)[j]) +
                         ", a duplicate of certificate " + std::to_string((*certs)[i].position));
        certs->erase(certs->begin() + static_cast<std::ptrdiff_t>(j));
      } else {
        ++j;
      }
    }
  }

  const std::vector<ChainCert>& in = *certs;
  const size_t n = in.size();
  Links links = computeLinks(in, checkSignatures);

  // The leaf issues nothing else in the set and holds the key's public half.
  std::vector<size_t> candidates;
  size_t leaf = n;
  for (size_t i = 0; i < n; ++i) {
    bool issuesOther = false;
    for (size_t j = 0; j < n; ++j) issuesOther |= (i != j && links.issues(i, j));
    if (issuesOther) continue;
    candidates.push_back(i);
    if (leaf == n && links.pubOf(i) != nullptr && EVP_PKEY_cmp(links.pubOf(i), key) == 1) leaf = i;
  }
  if (leaf == n) {
    for (size_t i = 0; i < n; ++i) {
      if (links.pubOf(i) != nullptr && EVP_PKEY_cmp(links.pubOf(i), key) == 1) {
        return makeError(std::string(keySource) + ": the private key belongs to " + label(in[i]) +
                         ", which issues another certificate of the chain; give the leaf's key");
      }
    }
    std::string which;
    for (size_t i : candidates) which += (which.empty() ? "" : ", ") + label(in[i]);
    ERR_clear_error();
    return makeError(std::string(keySource) +
                     ": the private key does not match the leaf certificate (" +
                     (which.empty() ? std::string(chainSource) + ": no leaf found" : which) + ")");
  }

  std::vector<size_t> order{leaf};
  std::vector<char> used(n, 0);
  used[leaf] = 1;
  size_t cur = leaf;
  while (!links.selfSigned(cur)) {
    size_t next = n;
    for (size_t j = 0; j < n && next == n; ++j) {
      if (!used[j] && links.issues(j, cur)) next = j;
    }
    if (next == n) break;
    order.push_back(next);
    used[next] = 1;
    cur = next;
  }

  if (order.size() < n) {
    std::string leftover;
    for (size_t j = 0; j < n; ++j) {
      if (!used[j]) leftover += (leftover.empty() ? "" : "; ") + bare(in[j]);
    }
    std::string why;
    if (links.selfSigned(cur)) {
      why = "it ends at the self-signed " + bare(in[cur]);
    } else {
      why = "the issuer of " + bare(in[cur]) + ", '" +
            nameText(X509_get_issuer_name(in[cur].x509.get())) + "', is missing";
      for (size_t j = 0; j < n; ++j) {
        if (!used[j] && links.namesIssuer(j, cur)) {
          why += " (" + bare(in[j]) + " has that name, but its key did not sign it)";
          break;
        }
      }
    }
    return makeError(std::string(chainSource) + ": the chain does not link: " + why +
                     "; left over: " + leftover);
  }

  // RFC 8446 section 4.4.2: a trust anchor may be omitted; clients must have
  // it already, so sending it only costs bytes in every handshake.
  if (order.size() > 1 && links.selfSigned(order.back())) {
    notes->push_back(std::string(chainSource) + ": dropped the self-signed root " +
                     bare(in[order.back()]) + ": clients have it in their trust store");
    order.pop_back();
  }

  bool reordered = false;
  for (size_t k = 1; k < order.size(); ++k) reordered |= order[k] < order[k - 1];
  if (reordered) {
    std::string given;
    for (size_t k : order) given += (given.empty() ? "" : ", ") + std::to_string(in[k].position);
    notes->push_back(std::string(chainSource) +
                     ": reordered to leaf -> intermediates (certificates " + given + ")");
  }

  std::vector<ChainCert> out;
  out.reserve(order.size());
  for (size_t k : order) out.push_back(std::move((*certs)[k]));
  *certs = std::move(out);
  return Ok{};
}

}  // namespace tlsedge::certstore
