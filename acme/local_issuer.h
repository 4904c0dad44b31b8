// acme::LocalIssuer: the acme::Issuer for `acme: { directory: internal }`.
// Orders are answered by the local CA (acme/local_ca.h) instead of a CA over
// HTTP: no account, no challenges, no ARI. Everything else is the pipeline
// of a real CA: the manager schedules and retries the same way, the
// certificate goes to the store as `acme-<site>` (source acme) and reaches
// traffic through the store watcher's hot swap, `tlsedge acme status|renew`
// work unchanged.
//
// Orders queue and are issued one per loop turn (a zero timer), so `done`
// never runs inside order().
//
// Thread: the control loop only (issuing signs and writes the store entry:
// a few milliseconds of CPU and small atomic writes).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "acme/issuer.h"
#include "acme/local_ca.h"
#include "certstore/store.h"

namespace tlsedge::acme {

class LocalIssuer final : public Issuer {
 public:
  static constexpr int64_t kLifetimeSeconds = 7 * 86400;

  // Opens (or creates) the local CA in `storage` (LocalCa::open), logs where
  // its certificate is, for developers to trust, and stores what it issues
  // there.
  static Result<std::unique_ptr<LocalIssuer>> create(uv_loop_t* loop, certstore::StoragePtr storage,
                                                     int64_t lifetimeSeconds = kLifetimeSeconds);
  ~LocalIssuer() override;
  LocalIssuer(const LocalIssuer&) = delete;
  LocalIssuer& operator=(const LocalIssuer&) = delete;

  void order(OrderRequest request, Done done) override;
  // Local failures carry no Retry-After: the manager's plain backoff.
  const OrderFailure& lastFailure() const override { return failure_; }

  const std::string& caCertificatePath() const { return ca_.certificatePath(); }

 private:
  LocalIssuer(uv_loop_t* loop, LocalCa ca, certstore::StoragePtr storage, int64_t lifetimeSeconds);
  void issueNext();
  Status issue(const OrderRequest& request);

  uv_loop_t* loop_;
  LocalCa ca_;
  certstore::CertificateStore store_;
  int64_t lifetimeSeconds_;
  uv_timer_t* timer_;
  std::deque<std::pair<OrderRequest, Done>> queue_;
  OrderFailure failure_;
};

}  // namespace tlsedge::acme
