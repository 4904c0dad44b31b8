// acme::LocalIssuer: the acme::Issuer for `acme: { directory: internal }`.
// Orders are answered by the local CA (acme/local_ca.h) instead of a CA over
// HTTP: no account, no challenges, no ARI. Everything else is the pipeline
// of a real CA: the manager schedules and retries the same way, the
// certificate goes to the store as `acme-<site>` (source acme) and reaches
// traffic through the store watcher's hot swap, `tlsedge acme status|renew`
// work unchanged.
//
// The CA is opened (or made) and every order issued and stored on the
// issuer's lane (net/offload_lane.h: libuv's thread pool, one at a time, in
// order), so `done` never runs inside order() and the loop never waits on
// the storage (etcd in a fleet) or on signing. The CA is opened by the
// first job, queued at creation (its notice says where ca.pem is); a CA that
// cannot be opened fails each order with the reason, and the next order
// tries again.
//
// Thread: the control loop; the CA and the storage on the lane's jobs.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "acme/issuer.h"
#include "acme/local_ca.h"
#include "certstore/storage.h"
#include "net/offload_lane.h"

namespace tlsedge::acme {

class LocalIssuer final : public Issuer {
 public:
  static constexpr int64_t kLifetimeSeconds = 7 * 86400;

  // Opens (or creates) the local CA in `storage` (LocalCa::open) on the
  // lane, logs where its certificate is, for developers to trust, and
  // stores what it issues there.
  static std::unique_ptr<LocalIssuer> create(uv_loop_t* loop, certstore::StoragePtr storage,
                                             int64_t lifetimeSeconds = kLifetimeSeconds);
  ~LocalIssuer() override;
  LocalIssuer(const LocalIssuer&) = delete;
  LocalIssuer& operator=(const LocalIssuer&) = delete;

  void order(OrderRequest request, Done done) override;
  // Local failures carry no Retry-After: the manager's plain backoff.
  const OrderFailure& lastFailure() const override { return failure_; }

  const std::string& caCertificatePath() const { return caPath_; }

 private:
  struct Authority;  // the CA and where it lives, touched by the lane's jobs only
  LocalIssuer(uv_loop_t* loop, certstore::StoragePtr storage, int64_t lifetimeSeconds);

  std::shared_ptr<Authority> authority_;
  std::string caPath_;
  int64_t lifetimeSeconds_;
  OrderFailure failure_;
  net::OffloadLane lane_;  // last: destroyed first, dropping the callbacks
};

}  // namespace tlsedge::acme
