// acme::Manager: decides which sites need a certificate from the CA, when
// each one is renewed, and keeps ordering until they have one.
//
// Every site with `tls: { acme: true }` has a due time (wall clock):
//  - now, when its store entry `acme-<site>` is missing, does not read, does
//    not cover all its hosts or has expired;
//  - else when a third of its lifetime (or acme.renew_before) remains,
//    minus a per-site jitter (acme/schedule.h);
//  - when the CA's directory has `renewalInfo` (ARI, RFC 9773): a random
//    time inside the suggested window, re-asked after the answer's
//    Retry-After (clamped to 1 min .. 1 day; 6 h without one); the renewal
//    order then carries `replaces`.
// One uv_timer is armed for the soonest due time or ARI check of all sites.
// The issued certificate is written to the store and `issued(name)` called:
// the control loop hands it to the store watcher (proxy/), which hot-swaps
// it into traffic (established connections keep theirs).
//
// The certificates come from an acme::Issuer (acme/issuer.h): a CA over
// RFC 8555, or the local CA of `acme: { directory: internal }`; the rest
// (schedule, retries, status, hot swap) is the same for both.
//
// A failed order is logged with the CA's problem and retried after 1 min
// doubling to 1 h, longer when the CA says Retry-After or rateLimited
// (schedule.h); the current certificate keeps serving meanwhile.
// renewNow() (the admin API's POST /v1/acme/SITE/renew) orders at once;
// revokeNow() (POST /v1/acme/SITE/revoke) revokes the stored certificate
// and orders its replacement in the same run (the revoked one serves until
// the new one arrives; a site whose certificate was revoked is due at once).
// configure() (start, reload) re-reads each site's store entry; a reload
// that changes a site's hosts ends the order running for the old ones (its
// end is dropped; what it stored still reaches traffic) and gives up its
// fleet lock.
//
// Before a new order, unless `acme.preflight: false` or dns-01, the
// pre-flight (acme/preflight.h) checks that every host points here; a
// failed check places no order and counts as a failure (status, backoff).
// The pending order's URL, failures, backoff and a revoked serial are kept
// in <state>/acme/sites/<site>.json (acme/site_state.h): a restart resumes
// the order and keeps the backoff.
//
// In a fleet (acme/order_locks.h) an order starts by taking the site's
// lock: a site another node is ordering is checked again after
// kLockRecheckSeconds, and one whose certificate a peer renewed meanwhile is
// not ordered; the saved state (backoff included) is the fleet's, read
// again once the lock is taken.
//
// The manager's reads and writes of the store and of the saved site state
// run on its lane (net/offload_lane.h: libuv's thread pool, one at a time,
// in order), never on the control loop: in fleet mode each is an etcd round
// trip. A site whose first read has not come back has no schedule yet and
// refuses renew and revoke ("still being read"); an ended order keeps its
// site in flight until its state is saved and its certificate re-read, and
// only then gives up the fleet's lock (a renew or revoke asked meanwhile is
// accepted and follows). A renew or revoke that finds a peer holding the
// fleet's lock is kept for the next attempt.
//
// Thread: the control loop only.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "acme/ari.h"
#include "acme/challenge_store.h"
#include "acme/issuer.h"
#include "acme/order_locks.h"
#include "acme/preflight.h"
#include "acme/site_state.h"
#include "acme/status.h"
#include "conf/config.h"
#include "net/offload_lane.h"

namespace tlsedge::acme {

// The store entry an ACME site's certificate is kept under.
std::string certificateNameFor(const std::string& site);

class Manager {
 public:
  // A site whose lock another node holds (or that etcd kept from taking)
  // is tried again after this long.
  static constexpr int64_t kLockRecheckSeconds = 5;
  using Issued = std::function<void(const std::string& certificateName)>;
  Manager(uv_loop_t* loop, ChallengeStore& challenges, Issued issued);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Start and reload, before the store watcher is (re)started: creates
  // <state>/certs if an ACME site needs it; a changed `acme:` section
  // replaces the client (orders in progress are dropped and placed again);
  // sites are (re)checked and (re)scheduled. `storage` is where the ACME
  // state and the certificates are kept (the daemon opened it from `config`).
  void configure(const conf::Config& config, certstore::StoragePtr storage);
  // Fleet mode, before the first configure(): whose turn it is to order
  // (outlives the manager's use of it). Null: a single node orders itself.
  void setOrderLocks(OrderLocks* locks) { locks_ = locks; }
  // Stops everything; the loop can end afterwards.
  void close();

  // Every ACME site's status, in name order.
  std::vector<SiteStatus> status() const;
  // Orders ended since the process started (metrics).
  struct OrderCounts {
    uint64_t succeeded = 0;
    std::map<std::string, uint64_t> failed;  // by OrderFailure::problemKind
  };
  const OrderCounts& orderCounts() const { return orderCounts_; }
  // Orders `site`'s certificate now (also during a failure backoff). An
  // Error of kind kNotFound when the site is unknown, kUnavailable when no
  // CA client runs, kConflict when an order for it is already running.
  Status renewNow(const std::string& site);
  // Revokes `site`'s stored certificate (RFC 8555 section 7.6; `reason`:
  // RFC 5280 CRLReason) and orders a new one at once. Errors as renewNow,
  // and kUnavailable when the site has no stored certificate.
  Status revokeNow(const std::string& site, std::optional<int> reason);

 private:
  struct SiteState {
    std::vector<std::string> hosts;
    SiteStatus status;                  // certificate, schedule, failures
    time_t backoffUntil = 0;            // no automatic order before; 0: none
    std::string certId;                 // ARI id of the stored certificate; empty: none
    bool ariSupported = false;          // the last renewalInfo answer was one
    bool ariPending = false;            // a renewalInfo request is running
    time_t ariCheckAt = 0;              // next renewalInfo request; 0: none
    std::string orderUrl;               // the order in progress at the CA (persisted)
    std::string revokedSerial;          // the stored certificate's, once revoked
    bool fresh = true;                  // its saved state not read yet
    certstore::StoragePtr lockStorage;  // fleet: the site's lock is ours (writes fenced)
    uint64_t run = 0;                   // the order run the lane's and the lock's answers are for
    // A renew or revoke asked while a peer held the fleet's lock: the next
    // attempt carries it.
    std::optional<OrderRequest> asked;
    // The ended order's state is being saved and its certificate re-read;
    // a renew or revoke asked meanwhile runs right after.
    bool wrappingUp = false;
    std::function<void()> afterWrapUp;
  };
  // A site's store entry and (when asked) saved state, read on the lane.
  struct SiteRead {
    std::string site;
    StoredCertificate stored;
    std::optional<Result<std::optional<SavedSite>>> saved;
  };
  using Reads = std::vector<SiteRead>;

  // Reads each site (with its saved state when the flag says so) on the
  // lane; `then` runs on the loop with what was read.
  void read(std::vector<std::pair<std::string, bool>> sites, std::function<void(Reads)> then);
  // The site while `run` is its current order run (and a client runs).
  SiteState* current(const std::string& site, uint64_t run);
  // Sets the site's status from its store entry, and its due time.
  void refresh(const std::string& site, SiteState& state, const StoredCertificate& stored);
  void startOrder(const std::string& site, SiteState& state, OrderRequest request = {});
  void lockTaken(const std::string& site, uint64_t run, OrderRequest request,
                 Result<OrderLocks::Lock> lock);
  void checkUnderLock(const std::string& site, uint64_t run, bool forced, OrderRequest request,
                      const SiteRead& read);
  void beginOrder(const std::string& site, SiteState& state, OrderRequest request);
  void releaseLock(const std::string& site, SiteState& state);
  void placeOrder(uint64_t run, OrderRequest request);
  void orderDone(const std::string& site, uint64_t run, Status status, OrderFailure failure);
  Result<SiteState*> orderable(const std::string& site);
  // True when `site`'s ended order is being wrapped up: `call` runs after.
  bool deferredPastWrapUp(const std::string& site, std::function<void()> call);
  void orderWrappedUp(const std::string& site, uint64_t run, const StoredCertificate& stored);
  void revokeRead(const std::string& site, uint64_t run, std::optional<int> reason,
                  Result<std::string> der);
  void restore(const std::string& site, SiteState& state,
               const Result<std::optional<SavedSite>>& loaded);   // from <state>/acme/sites/
  void persist(const std::string& site, const SiteState& state);  // on the lane
  void checkRenewalInfo(const std::string& site, SiteState& state);
  void renewalInfoDone(const std::string& site, const std::string& certId,
                       Result<RenewalInfoClient::Answer> answer);
  void armTimer();
  void onTimer();

  uv_loop_t* loop_;
  ChallengeStore& challenges_;
  Issued issued_;
  uv_timer_t* timer_;
  std::string stateDir_;
  certstore::StoragePtr storage_;  // the state directory's (fleet mode: etcd's)
  OrderLocks* locks_ = nullptr;    // fleet mode
  std::string clientKey_;          // directory, email and roots the client was made for
  int64_t renewBeforeSeconds_ = 0;
  certstore::NewKeyType keyType_ = certstore::NewKeyType::kEcdsaP256;  // acme.key_type
  std::unique_ptr<Issuer> client_;  // the CA client or the local CA (acme/issuer.h)
  std::unique_ptr<RenewalInfoClient> ari_;
  std::unique_ptr<Preflight> preflight_;  // null: no pre-flight (off, dns-01)
  std::string directory_;                 // the CA the client was made for
  std::string settings_;  // digest of the fleet-wide part of clientKey_ (saved site state)
  std::map<std::string, SiteState> sites_;
  std::mt19937_64 random_{std::random_device{}()};
  OrderCounts orderCounts_;
  uint64_t runs_ = 0;      // order runs started (SiteState::run)
  net::OffloadLane lane_;  // the store's and the saved state's reads and writes
  bool closed_ = false;
};

}  // namespace tlsedge::acme
