#include "acme/issuer.h"

#include "acme/ari.h"
#include "acme/client.h"
#include "acme/local_issuer.h"
#include "certstore/files.h"
#include "net/tls_roots.h"

namespace tlsedge::acme {

Result<Issuers> makeIssuer(uv_loop_t* loop, ChallengeStore& challenges, const conf::Acme& acme,
                           certstore::StoragePtr storage) {
  Issuers out;
  if (acme.internal) {
    out.issuer = LocalIssuer::create(loop, std::move(storage));
    return out;
  }
  ClientOptions options;
  options.directoryUrl = acme.directory;
  options.email = acme.email;
  options.storage = std::move(storage);
  options.challenge = acme.challenge;
  options.dnsHook = acme.dnsHook;
  options.eab = acme.eab;
  options.preferredChain = acme.preferredChain;
  if (auto system = certstore::readFile(net::kSystemRootsFile); system.ok()) {
    options.roots.emplace_back(net::kSystemRootsFile, std::move(*system));
  }
  for (const auto& path : acme.trustedRoots) {
    auto text = certstore::readFile(path);
    if (!text) return makeError("acme.trusted_roots: " + text.error().message);
    options.roots.emplace_back(path, std::move(*text));
  }
  auto ari = RenewalInfoClient::create(loop, options.directoryUrl, options.roots);
  if (!ari) return ari.error();
  auto client = Client::create(loop, challenges, std::move(options));
  if (!client) return client.error();
  out.issuer = std::move(*client);
  out.renewalInfo = std::move(*ari);
  return out;
}

}  // namespace tlsedge::acme
