// acme::Issuer: where acme::Manager gets certificates from. Two kinds: the
// RFC 8555 client talking to a CA (acme/client.h), and the local CA in the
// state directory (acme/local_issuer.h, `acme: { directory: internal }`).
// Both end an order the same way: the certificate written to the store as
// `request.certificateName` (source acme, the site in meta.json), then
// `done(Ok)`; the manager does the rest (schedule, status, hot swap).
//
// makeIssuer() picks the kind from the `acme:` section; the manager knows
// only this interface.
//
// Thread: the control loop only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "acme/challenge_store.h"
#include "base/result.h"
#include "certstore/key_material.h"
#include "certstore/storage.h"
#include "conf/config.h"

namespace tlsedge::acme {

class RenewalInfoClient;

struct OrderRequest {
  std::string site;
  std::string certificateName;  // store entry written (replaced) on success
  std::vector<std::string> hosts;
  certstore::NewKeyType keyType = certstore::NewKeyType::kEcdsaP256;
  std::string replaces;  // ARI certId of the certificate this one renews; empty: none
  // An order placed before a restart (acme/site_state.h): fetched first;
  // pending or ready goes on from there, anything else (processing without
  // the lost key, valid, invalid, gone) is ordered anew. The local CA has
  // no orders to resume and ignores it.
  std::string resumeUrl;
  // Called with the order's URL once the CA created it (to persist it).
  std::function<void(const std::string& orderUrl)> placed;
  // RFC 8555 section 7.6: revoke this certificate (DER, signed with the
  // account key) before ordering; empty: none. Reason: RFC 5280 CRLReason.
  // The local CA publishes no revocation: it only issues the replacement.
  std::string revokeDer;
  std::optional<int> revokeReason;
  std::function<void()> revoked;  // called once the CA revoked it
  // Where the certificate is written: in a fleet, the order lock's storage
  // (acme/order_locks.h), which refuses the write once the lock is lost;
  // null: the issuer's own.
  certstore::StoragePtr storage;
  // Asked for (renewNow): ordered even when the certificate is not due.
  bool forced = false;
};

// What the CA said about the last failed request of an order: for the
// manager's retry policy (acme/schedule.h).
struct OrderFailure {
  std::optional<int64_t> retryAfterSeconds;  // the error answer's Retry-After
  bool rateLimited = false;                  // a `rateLimited` problem
  std::string problemKind = "other";         // Problem::kind() of the CA's answer, for metrics
};

class Issuer {
 public:
  using Done = std::function<void(Status)>;
  virtual ~Issuer() = default;

  // Queues an order; `done` runs on the loop when it ended (never inside
  // order()). Destroying the issuer drops pending orders unrun.
  virtual void order(OrderRequest request, Done done) = 0;
  // Of the order whose `done` is running (or ran last).
  virtual const OrderFailure& lastFailure() const = 0;
};

struct Issuers {
  std::unique_ptr<Issuer> issuer;
  std::unique_ptr<RenewalInfoClient> renewalInfo;  // null: no ARI (the local CA)
};

// The issuer `acme` selects, keeping its state in `storage`: the local
// CA (created on first use) when `acme.internal`, else the RFC 8555 client
// for `acme.directory` with its ARI client (trusting the system roots plus
// `acme.trustedRoots`). Errors name the file or setting at fault.
Result<Issuers> makeIssuer(uv_loop_t* loop, ChallengeStore& challenges, const conf::Acme& acme,
                           certstore::StoragePtr storage);

}  // namespace tlsedge::acme
