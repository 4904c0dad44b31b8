#include "acme/manager.h"

#include <strings.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

#include "acme/csr.h"
#include "acme/jose.h"
#include "acme/revocation.h"
#include "acme/schedule.h"
#include "acme/site_state.h"
#include "base/log.h"
#include "base/time.h"
#include "certstore/file_storage.h"
#include "certstore/files.h"
#include "certstore/storage.h"
#include "certstore/store.h"
#include "net/loop.h"

namespace tlsedge::acme {
namespace {

constexpr int64_t kAriDefaultCheckSeconds = 6 * 3600;  // without a Retry-After
constexpr int64_t kAriErrorCheckSeconds = 3600;

bool sameName(const std::string& a, const std::string& b) {
  return a.size() == b.size() && strcasecmp(a.c_str(), b.c_str()) == 0;
}

}  // namespace

std::string certificateNameFor(const std::string& site) { return conf::acmeCertificateName(site); }

Manager::Manager(uv_loop_t* loop, ChallengeStore& challenges, Issued issued)
    : loop_(loop),
      challenges_(challenges),
      issued_(std::move(issued)),
      timer_(new uv_timer_t),
      lane_(loop) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

Manager::~Manager() { close(); }

void Manager::close() {
  if (closed_) return;
  closed_ = true;
  lane_.close();  // a read or write running finishes on the pool, unanswered
  preflight_.reset();
  client_.reset();
  ari_.reset();
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(timer_), timer_);
}

void Manager::configure(const conf::Config& config, certstore::StoragePtr storage) {
  if (closed_) return;
  storage_ = std::move(storage);
  stateDir_ = config.stateDir;
  renewBeforeSeconds_ =
      config.acme
          ? std::chrono::duration_cast<std::chrono::seconds>(config.acme->renewBefore).count()
          : 0;
  if (config.acme) keyType_ = csrKeyType(config.acme->keyType);
  std::map<std::string, SiteState> next;
  for (const conf::Site& site : config.sites) {
    if (!site.acme) continue;
    SiteState state;
    state.status.site = site.name;
    state.status.certificate = certificateNameFor(site.name);
    state.status.nextReason = "reading its certificate and saved state";
    if (auto it = sites_.find(site.name); it != sites_.end() && it->second.hosts == site.hosts) {
      state = it->second;  // keeps in-flight, backoff, ARI and saved state
    }
    state.hosts = site.hosts;
    next.emplace(site.name, std::move(state));
  }
  for (auto& [name, state] : sites_) {
    // No longer an ACME site here, or its hosts changed: its state starts
    // anew, and the run for the old hosts (whose answers are dropped) must
    // not keep the fleet's lock.
    auto kept = next.find(name);
    if (kept == next.end() || kept->second.hosts != state.hosts) releaseLock(name, state);
  }
  sites_ = std::move(next);
  // The store directory must exist before the store watcher starts watching
  // it, or the first issued certificate would go unnoticed until a SIGHUP.
  if (!sites_.empty()) {
    Status made = certstore::FileStorage(stateDir_).makeDirectory("certs");
    if (!made) log::warning("acme: " + made.error().message);
  }
  if (!config.acme || sites_.empty()) {
    preflight_.reset();
    client_.reset();
    ari_.reset();
    clientKey_.clear();
    uv_timer_stop(timer_);
    return;
  }
  std::string key = config.acme->directory + "\n" + config.acme->email + "\n" +
                    storage_->describe("acme") + "\n" + config.acme->dnsHook + "\n" +
                    std::to_string(static_cast<int>(config.acme->challenge));
  for (const auto& root : config.acme->trustedRoots) key += "\n" + root;
  if (config.acme->eab) key += "\neab " + config.acme->eab->kid + " " + config.acme->eab->hmacKey;
  // The saved site state is bound to these; what follows is this node's own
  // (its pre-flight addresses), which must not void the fleet's state.
  const std::string settings = base64url(sha256(key));
  PreflightOptions preflight;
  preflight.httpPort = config.httpListen.empty() ? 0 : config.httpListen.front().port;
  preflight.resolve.insert(config.acme->preflightResolve.begin(),
                           config.acme->preflightResolve.end());
  // The local CA validates nothing: no pre-flight for it.
  const bool preflightOn = config.acme->preflight && !config.acme->internal &&
                           config.acme->challenge != conf::AcmeChallenge::kDns01;
  key += "\npreflight " + std::to_string(preflightOn) + " " + std::to_string(preflight.httpPort);
  for (const auto& [host, address] : preflight.resolve) key += " " + host + "=" + address;
  key += "\nchain " + config.acme->preferredChain;
  if (key != clientKey_ || client_ == nullptr) {
    preflight_.reset();  // with the client: their callbacks end the sites' runs
    client_.reset();
    ari_.reset();
    clientKey_.clear();
    for (auto& [name, state] : sites_) {
      releaseLock(name, state);
      state.status.inFlight = false;  // the old client's orders are gone
      state.run = 0;                  // and what the lane or the lock answers for them
      state.asked.reset();
      state.wrappingUp = false;
      state.afterWrapUp = nullptr;
      state.backoffUntil = 0;  // a new CA or account: try at once
      state.status.failures = 0;
      state.ariPending = false;
      state.ariCheckAt = 0;
      state.ariSupported = false;
    }
    auto made = makeIssuer(loop_, challenges_, *config.acme, storage_);
    if (!made) {
      log::error(made.error().message + "; no certificates are ordered");
      return;
    }
    if (preflightOn) {
      auto checker = Preflight::create(loop_, challenges_, std::move(preflight));
      if (!checker) {
        log::error(checker.error().message + "; no certificates are ordered");
        return;
      }
      preflight_ = std::move(*checker);
    }
    client_ = std::move(made->issuer);
    ari_ = std::move(made->renewalInfo);
    clientKey_ = key;
    directory_ = config.acme->directory;
    settings_ = settings;
  }
  std::vector<std::pair<std::string, bool>> wanted;
  for (const auto& [name, state] : sites_) wanted.emplace_back(name, state.fresh);
  read(std::move(wanted), [this](Reads reads) {
    for (const SiteRead& r : reads) {
      auto it = sites_.find(r.site);
      if (it == sites_.end()) continue;  // removed by a reload meanwhile
      // Restored once: a later read of the same site (a reload meanwhile)
      // must not undo what the first one started.
      if (r.saved && it->second.fresh) restore(r.site, it->second, *r.saved);
      refresh(r.site, it->second, r.stored);
    }
    armTimer();
  });
}

void Manager::read(std::vector<std::pair<std::string, bool>> sites,
                   std::function<void(Reads)> then) {
  lane_.run<Reads>(
      [storage = storage_, sites = std::move(sites)] {
        Reads out;
        out.reserve(sites.size());
        for (const auto& [site, withSaved] : sites) {
          SiteRead r{site, readStoredCertificate(storage, site), std::nullopt};
          if (withSaved) r.saved = loadSavedSite(*storage, site);
          out.push_back(std::move(r));
        }
        return out;
      },
      std::move(then));
}

Manager::SiteState* Manager::current(const std::string& site, uint64_t run) {
  auto it = sites_.find(site);
  if (it == sites_.end() || client_ == nullptr || it->second.run != run) return nullptr;
  return &it->second;
}

void Manager::refresh(const std::string& site, SiteState& state, const StoredCertificate& read) {
  SiteStatus& s = state.status;
  const SiteStatus& stored = read.status;
  s.site = site;
  s.certificate = stored.certificate;
  s.stored = stored.stored;
  s.serialHex = stored.serialHex;
  s.notAfter = stored.notAfter;
  s.scheduleKnown = true;
  if (s.inFlight) return;
  const time_t now = ::time(nullptr);
  const Result<certstore::CertInfo>& info = read.info;
  std::string dueNow;
  if (!info) {
    dueNow = "no certificate yet";
  } else if (info->notAfter <= now) {
    dueNow = "the certificate has expired";
  } else if (!state.revokedSerial.empty() && state.revokedSerial == s.serialHex) {
    dueNow = "the certificate was revoked";
  } else if (!state.orderUrl.empty()) {
    dueNow = "an order placed before the restart is pending";
  } else {
    for (const auto& host : state.hosts) {
      auto covers = [&](const std::string& n) { return sameName(n, host); };
      if (std::none_of(info->dnsNames.begin(), info->dnsNames.end(), covers) &&
          std::none_of(info->ipAddresses.begin(), info->ipAddresses.end(), covers)) {
        dueNow = "the certificate does not cover " + host;
        break;
      }
    }
  }
  if (!dueNow.empty()) {
    if (info) log::info("acme: certificate `" + s.certificate + "`: " + dueNow + ": ordering anew");
    state.certId.clear();
    s.ariWindowStart = s.ariWindowEnd = 0;
    s.nextRenewal = now;
    s.nextReason = dueNow;
  } else {
    const std::string& id = read.certId;
    if (id != state.certId) {  // a new certificate: its own ARI window
      state.certId = id;
      state.ariSupported = false;
      state.ariCheckAt = id.empty() || ari_ == nullptr ? 0 : now;  // the local CA: no ARI
      s.ariWindowStart = s.ariWindowEnd = 0;
    }
    if (!state.ariSupported || s.ariWindowStart == 0) {
      s.nextRenewal = renewalTime(info->notBefore, info->notAfter, renewBeforeSeconds_, site);
      s.nextReason = renewBeforeSeconds_ > 0 ? "acme.renew_before left, minus jitter"
                                             : "a third of the lifetime left, minus jitter";
    }
  }
  if (state.backoffUntil > s.nextRenewal) {
    s.nextRenewal = state.backoffUntil;
    s.nextReason = "retry after " + std::to_string(s.failures) + " failure(s)";
  }
}

void Manager::startOrder(const std::string& site, SiteState& state, OrderRequest request) {
  if (client_ == nullptr || state.status.inFlight) return;
  state.status.inFlight = true;
  state.status.nextRenewal = 0;
  state.run = ++runs_;
  if (locks_ == nullptr || state.lockStorage != nullptr) {
    return beginOrder(site, state, std::move(request));
  }
  state.status.nextReason = "taking the fleet's order lock";
  locks_->acquire(site,
                  [this, site, run = state.run, request = std::move(request)](auto lock) mutable {
                    lockTaken(site, run, std::move(request), std::move(lock));
                  });
}

// Fleet mode: the lock is ours (order, unless a peer renewed meanwhile),
// another node's, or could not be taken (etcd unreachable: try again).
void Manager::lockTaken(const std::string& site, uint64_t run, OrderRequest request,
                        Result<OrderLocks::Lock> lock) {
  SiteState* current = this->current(site, run);
  if (current == nullptr) {  // the site or the client is gone, or a reload ended the run
    if (lock && lock->ours) locks_->release(site);
    return;
  }
  SiteState& state = *current;
  SiteStatus& s = state.status;
  s.inFlight = false;
  const time_t now = ::time(nullptr);
  if (!lock || !lock->ours) {
    // No holder: the lock kept changing hands while this node tried.
    const bool held = lock && !lock->holder.empty();
    if (held && lock->holder != s.lockHolder) {
      log::info("acme: site `" + site + "`: node `" + lock->holder +
                "` holds the fleet's order lock and orders it; checking again every " +
                std::to_string(kLockRecheckSeconds) + " s");
    }
    s.lockHolder = lock ? lock->holder : std::string();
    s.nextRenewal = now + kLockRecheckSeconds;
    s.nextReason = held   ? "node `" + lock->holder + "` is ordering it"
                   : lock ? std::string("the fleet's order lock kept changing hands")
                          : "the order waits for etcd: " + lock.error().message;
    // A renew or revoke waits for the lock, not for nothing to be due.
    if (request.forced || !request.revokeDer.empty()) state.asked = std::move(request);
    if (!lock) {
      log::warning("acme: site `" + site + "`: " + s.nextReason);
      return armTimer();
    }
    // The holder may have stored the certificate already (another node's
    // re-check holds the lock briefly too): once the store has one that is
    // not due, this node waits for nobody.
    read({{site, false}}, [this, site, run](Reads reads) {
      SiteState* waiter = this->current(site, run);
      if (waiter == nullptr || waiter->status.inFlight || waiter->asked) return;
      SiteStatus& st = waiter->status;
      const time_t recheck = st.nextRenewal;
      const std::string waiting = st.nextReason;
      refresh(site, *waiter, reads.front().stored);
      if (st.nextRenewal > recheck) {
        st.lockHolder.clear();
      } else {
        st.nextRenewal = recheck;
        st.nextReason = waiting;
      }
      armTimer();
    });
    return armTimer();
  }
  s.lockHolder = locks_->node();
  state.lockStorage = std::move(lock->storage);
  log::info("acme: site `" + site + "`: this node (`" + s.lockHolder +
            "`) holds the fleet's order lock");
  // The fencing check: what the fleet holds now, not what this node read
  // before the lock was its (a peer may have renewed, failed or revoked).
  const bool forced = !request.revokeDer.empty() || request.forced;
  s.inFlight = true;  // until the re-read is in
  s.nextReason = "reading the fleet's state of the site under its lock";
  read({{site, true}},
       [this, site, run, forced, request = std::move(request)](Reads reads) mutable {
         checkUnderLock(site, run, forced, std::move(request), reads.front());
       });
}

void Manager::checkUnderLock(const std::string& site, uint64_t run, bool forced,
                             OrderRequest request, const SiteRead& read) {
  SiteState* current = this->current(site, run);
  if (current == nullptr) return;  // a reload released the lock meanwhile
  SiteState& state = *current;
  SiteStatus& s = state.status;
  s.inFlight = false;
  state.orderUrl.clear();
  restore(site, state, *read.saved);
  refresh(site, state, read.stored);
  // After the re-read (refresh's "due now" is its own clock, maybe a
  // second past the lock's answer: comparing with that called a due site
  // not due).
  if (!forced && s.nextRenewal > ::time(nullptr)) {
    log::info("acme: site `" + site + "`: not due after all (" + s.nextReason +
              "): another node of the fleet saw to it");
    releaseLock(site, state);
    return armTimer();
  }
  s.inFlight = true;
  s.nextRenewal = 0;
  beginOrder(site, state, std::move(request));
}

void Manager::releaseLock(const std::string& site, SiteState& state) {
  if (state.lockStorage == nullptr) return;
  state.lockStorage.reset();
  state.status.lockHolder.clear();
  locks_->release(site);
}

void Manager::beginOrder(const std::string& site, SiteState& state, OrderRequest request) {
  request.storage = state.lockStorage;
  request.site = site;
  request.certificateName = certificateNameFor(site);
  request.hosts = state.hosts;
  request.resumeUrl = state.orderUrl;
  request.keyType = keyType_;
  if (state.ariSupported && state.status.stored && !state.certId.empty()) {
    request.replaces = state.certId;
    log::info("acme: site `" + site + "`: the new order replaces " + state.certId + " (ARI)");
  }
  const uint64_t run = state.run;
  request.placed = [this, site, run](const std::string& url) {
    SiteState* current = this->current(site, run);
    if (current == nullptr) return;  // a reload ended the run
    current->orderUrl = url;
    persist(site, *current);
  };
  if (request.revoked) {
    request.revoked = [this, site, run, revoked = std::move(request.revoked)] {
      if (current(site, run) != nullptr) revoked();
    };
  }
  // The pre-flight guards new orders; a resumed order is placed already and
  // a revocation must not wait on DNS.
  if (preflight_ == nullptr || !request.resumeUrl.empty() || !request.revokeDer.empty()) {
    return placeOrder(run, std::move(request));
  }
  preflight_->check(state.hosts, [this, run, request = std::move(request)](Status checked) mutable {
    if (checked.ok()) {
      log::info("acme: site `" + request.site +
                "`: pre-flight passed, every host reaches this edge");
      return placeOrder(run, std::move(request));
    }
    orderDone(request.site, run,
              makeError("acme: site `" + request.site +
                        "`: pre-flight: " + checked.error().message + "; no order placed"),
              OrderFailure{});
  });
}

void Manager::placeOrder(uint64_t run, OrderRequest request) {
  if (client_ == nullptr) return;
  std::string site = request.site;
  client_->order(std::move(request), [this, run, site = std::move(site)](Status status) {
    orderDone(site, run, std::move(status),
              client_ != nullptr ? client_->lastFailure() : OrderFailure{});
  });
}

// The site an order may start for now, or why not.
Result<Manager::SiteState*> Manager::orderable(const std::string& site) {
  auto it = sites_.find(site);
  if (it == sites_.end()) {
    return makeError("no site `" + site + "` with tls: { acme: true } in the running configuration",
                     ErrorKind::kNotFound);
  }
  if (client_ == nullptr) {
    return makeError("acme: no CA client runs (see the log)", ErrorKind::kUnavailable);
  }
  if (it->second.status.inFlight) {
    return makeError("site `" + site + "`: an order is already running", ErrorKind::kConflict);
  }
  if (it->second.fresh) {
    return makeError("site `" + site + "`: its certificate and saved state are still being read",
                     ErrorKind::kUnavailable);
  }
  return &it->second;
}

Status Manager::revokeNow(const std::string& site, std::optional<int> reason) {
  if (deferredPastWrapUp(site, [this, site, reason] { (void)revokeNow(site, reason); })) {
    return Ok{};
  }
  auto state = orderable(site);
  if (!state) return state.error();
  const SiteStatus& s = (*state)->status;
  if (!s.stored) {
    return makeError("site `" + site + "` has no stored certificate to revoke",
                     ErrorKind::kUnavailable);
  }
  log::info("acme: revocation of certificate `" + s.certificate + "` (serial " + s.serialHex +
            ") of site `" + site + "` requested" +
            (reason ? ", reason " + std::to_string(*reason) : std::string()) +
            "; a new certificate is ordered right after");
  // The certificate to revoke is read first (on the lane); the site is in
  // flight meanwhile, so that nothing else starts.
  SiteState& st = **state;
  st.status.inFlight = true;
  st.run = ++runs_;
  lane_.run<Result<std::string>>(
      [storage = storage_, name = s.certificate] {
        auto chain = certstore::CertificateStore(storage).chainPem(name);
        return chain ? firstCertificateDer(*chain) : Result<std::string>(chain.error());
      },
      [this, site, run = st.run, reason](Result<std::string> der) {
        revokeRead(site, run, reason, std::move(der));
      });
  return Ok{};
}

void Manager::revokeRead(const std::string& site, uint64_t run, std::optional<int> reason,
                         Result<std::string> der) {
  SiteState* state = current(site, run);
  if (state == nullptr) return;  // a reload ended the run
  SiteStatus& s = state->status;
  s.inFlight = false;
  if (!der) {
    s.lastError = "acme: site `" + site + "`: not revoked: " + der.error().message;
    s.lastErrorAt = ::time(nullptr);
    log::error(s.lastError);  // the schedule stays as it was
    return armTimer();
  }
  OrderRequest request;
  request.revokeDer = std::move(*der);
  request.revokeReason = reason;
  request.revoked = [this, site, serial = s.serialHex] {
    auto it = sites_.find(site);
    if (it == sites_.end()) return;
    it->second.revokedSerial = serial;
    persist(site, it->second);
  };
  startOrder(site, *state, std::move(request));
  armTimer();
}

bool Manager::deferredPastWrapUp(const std::string& site, std::function<void()> call) {
  auto it = sites_.find(site);
  if (it == sites_.end() || client_ == nullptr || !it->second.wrappingUp) return false;
  it->second.afterWrapUp = std::move(call);
  log::info("acme: site `" + site + "`: its order is being wrapped up; the request follows it");
  return true;
}

Status Manager::renewNow(const std::string& site) {
  if (deferredPastWrapUp(site, [this, site] { (void)renewNow(site); })) return Ok{};
  auto state = orderable(site);
  if (!state) return state.error();
  log::info("acme: renewal of site `" + site + "` requested");
  OrderRequest request;
  request.forced = true;
  startOrder(site, **state, std::move(request));
  armTimer();
  return Ok{};
}

void Manager::orderDone(const std::string& site, uint64_t run, Status status,
                        OrderFailure failure) {
  if (status.ok()) {
    ++orderCounts_.succeeded;
    if (issued_) issued_(certificateNameFor(site));  // stored: to traffic, whatever follows
  } else {
    ++orderCounts_.failed[failure.problemKind];
  }
  // A run a reload ended (the site gone, or its hosts changed): the site's
  // new state has its own schedule.
  SiteState* current = this->current(site, run);
  if (current == nullptr) return;
  SiteState& state = *current;
  SiteStatus& s = state.status;
  state.orderUrl.clear();  // ended: a later attempt places a new order
  const time_t now = ::time(nullptr);
  // In flight until the state is saved (under the lock, in a fleet) and the
  // certificate re-read; the lock is given up only then.
  auto wrapUp = [this, &site, &state] {
    state.wrappingUp = true;
    persist(site, state);
    read({{site, false}}, [this, site, run = state.run](Reads reads) {
      orderWrappedUp(site, run, reads.front().stored);
    });
  };
  if (status.ok()) {
    s.failures = 0;
    s.retryDelaySeconds = 0;
    state.backoffUntil = 0;
    state.revokedSerial.clear();
    return wrapUp();
  }
  ++s.failures;
  const int64_t delay =
      retryDelaySeconds(s.failures, failure.retryAfterSeconds, failure.rateLimited);
  s.lastError = status.error().message;
  s.lastErrorAt = now;
  s.retryDelaySeconds = delay;
  state.backoffUntil = now + delay;
  log::error(status.error().message + "; retrying in " + std::to_string(delay) + " s (failure " +
             std::to_string(s.failures) + " in a row" +
             (failure.retryAfterSeconds
                  ? ", the CA said Retry-After " + std::to_string(*failure.retryAfterSeconds) + " s"
                  : std::string()) +
             (failure.rateLimited ? ", rate limited" : "") +
             "; the current certificate serves on)");
  wrapUp();
}

void Manager::orderWrappedUp(const std::string& site, uint64_t run,
                             const StoredCertificate& stored) {
  SiteState* state = current(site, run);
  if (state == nullptr) return;  // a reload ended the run (and released the lock)
  state->status.inFlight = false;
  state->wrappingUp = false;
  refresh(site, *state, stored);
  releaseLock(site, *state);
  armTimer();
  // A renew or revoke asked meanwhile (its errors are logged).
  if (auto call = std::exchange(state->afterWrapUp, nullptr)) call();
}

void Manager::restore(const std::string& site, SiteState& state,
                      const Result<std::optional<SavedSite>>& loaded) {
  state.fresh = false;
  if (!loaded) {
    log::warning("acme: site `" + site + "`: saved state ignored: " + loaded.error().message);
    return;
  }
  if (!*loaded) return;
  const SavedSite& saved = **loaded;
  if (saved.directory != directory_ || saved.settings != settings_ || saved.hosts != state.hosts) {
    log::info("acme: site `" + site +
              "`: saved state is for another CA, other acme settings or another host list: "
              "ignored");
    return;
  }
  SiteStatus& s = state.status;
  state.orderUrl = saved.orderUrl;
  state.revokedSerial = saved.revokedSerial;
  state.backoffUntil = saved.backoffUntil;
  s.failures = saved.failures;
  s.lastError = saved.lastError;
  s.lastErrorAt = saved.lastErrorAt;
  s.retryDelaySeconds = saved.retryDelaySeconds;
  if (!saved.orderUrl.empty()) {
    log::info("acme: site `" + site + "`: resuming order " + saved.orderUrl +
              " placed before the restart");
  }
  if (saved.backoffUntil > ::time(nullptr)) {
    log::info("acme: site `" + site + "`: " + std::to_string(saved.failures) +
              " failure(s) before the restart: no order before " + utc::format(saved.backoffUntil));
  }
}

void Manager::persist(const std::string& site, const SiteState& state) {
  SavedSite saved;
  saved.directory = directory_;
  saved.settings = settings_;
  saved.hosts = state.hosts;
  saved.orderUrl = state.orderUrl;
  saved.failures = state.status.failures;
  saved.lastError = state.status.lastError;
  saved.lastErrorAt = state.status.lastErrorAt;
  saved.retryDelaySeconds = state.status.retryDelaySeconds;
  saved.backoffUntil = state.backoffUntil;
  saved.revokedSerial = state.revokedSerial;
  // Under the site's lock in a fleet: not written once another node took over.
  lane_.run<Status>(
      [into = state.lockStorage ? state.lockStorage : storage_, site, saved] {
        return saveSite(*into, site, saved);
      },
      [site](Status written) {
        if (!written.ok()) {
          log::warning("acme: site `" + site + "`: state not saved: " + written.error().message);
        }
      });
}

void Manager::checkRenewalInfo(const std::string& site, SiteState& state) {
  if (ari_ == nullptr || state.certId.empty() || state.ariPending) return;
  state.ariPending = true;
  state.ariCheckAt = 0;
  ari_->fetch(state.certId, [this, site, certId = state.certId](auto answer) {
    renewalInfoDone(site, certId, std::move(answer));
  });
}

void Manager::renewalInfoDone(const std::string& site, const std::string& certId,
                              Result<RenewalInfoClient::Answer> answer) {
  auto it = sites_.find(site);
  if (it == sites_.end()) return;
  SiteState& state = it->second;
  state.ariPending = false;
  if (state.certId != certId) return;  // renewed meanwhile: refresh() asked anew
  const time_t now = ::time(nullptr);
  SiteStatus& s = state.status;
  if (!answer) {
    log::warning("acme: renewalInfo for `" + s.certificate + "`: " + answer.error().message +
                 "; asking again in " + std::to_string(kAriErrorCheckSeconds) + " s");
    state.ariCheckAt = now + kAriErrorCheckSeconds;
    return armTimer();
  }
  if (!answer->supported) {
    state.ariSupported = false;  // the CA has no ARI: the lifetime rule stays
    return;
  }
  const RenewalInfo& info = answer->info;
  const int64_t again =
      std::clamp<int64_t>(info.retryAfterSeconds.value_or(kAriDefaultCheckSeconds),
                          kMinRetrySeconds, kMaxRetryAfterSeconds);
  state.ariCheckAt = now + again;
  state.ariSupported = true;
  if (info.start != s.ariWindowStart || info.end != s.ariWindowEnd || s.nextRenewal == 0) {
    s.ariWindowStart = info.start;
    s.ariWindowEnd = info.end;
    if (!s.inFlight) {
      s.nextRenewal = pickInWindow(info.start, info.end, random_(), now);
      s.nextReason = "in the CA's renewalInfo window";
      if (state.backoffUntil > s.nextRenewal) s.nextRenewal = state.backoffUntil;
    }
    log::info("acme: renewalInfo for `" + s.certificate + "`: window " + utc::format(info.start) +
              " .. " + utc::format(info.end) + ", renewing at " + utc::format(s.nextRenewal) +
              (info.explanationUrl.empty() ? "" : " (" + info.explanationUrl + ")") +
              "; next check in " + std::to_string(again) + " s");
  } else {
    log::debug("acme: renewalInfo for `" + s.certificate + "` unchanged; next check in " +
               std::to_string(again) + " s");
  }
  armTimer();
}

void Manager::armTimer() {
  if (closed_) return;
  time_t soonest = 0;
  for (const auto& [name, state] : sites_) {
    for (time_t t : {state.status.inFlight ? time_t{0} : state.status.nextRenewal,
                     state.ariPending ? time_t{0} : state.ariCheckAt}) {
      if (t != 0 && (soonest == 0 || t < soonest)) soonest = t;
    }
  }
  if (soonest == 0 || client_ == nullptr) {
    uv_timer_stop(timer_);
    return;
  }
  const time_t now = ::time(nullptr);
  const uint64_t delayMs = soonest > now ? static_cast<uint64_t>(soonest - now) * 1000 : 0;
  uv_timer_start(
      timer_, [](uv_timer_t* t) noexcept { static_cast<Manager*>(t->data)->onTimer(); }, delayMs,
      0);
}

void Manager::onTimer() {
  const time_t now = ::time(nullptr);
  for (auto& [name, state] : sites_) {
    if (!state.status.inFlight && state.status.nextRenewal != 0 &&
        state.status.nextRenewal <= now) {
      log::info("acme: site `" + name + "`: ordering now (" + state.status.nextReason + ")");
      OrderRequest request;
      if (state.asked) request = std::move(*std::exchange(state.asked, std::nullopt));
      startOrder(name, state, std::move(request));
    }
    if (!state.ariPending && state.ariCheckAt != 0 && state.ariCheckAt <= now) {
      checkRenewalInfo(name, state);
    }
  }
  armTimer();
}

std::vector<SiteStatus> Manager::status() const {
  std::vector<SiteStatus> out;
  for (const auto& [name, state] : sites_) {
    out.push_back(state.status);
    if (client_ == nullptr && !state.status.inFlight) {
      out.back().nextRenewal = 0;
      out.back().nextReason = "no CA client runs (see the log)";
    }
  }
  return out;
}

}  // namespace tlsedge::acme
