#include "daemon/fleet_acme.h"

#include "base/log.h"
#include "net/loop.h"
#include "net/offload.h"

namespace tlsedge::daemon {
namespace {

constexpr uint64_t kRetryMs = 1000;  // a failed read or watch of the challenges

const char* kindName(acme::ChallengeSharing::Kind kind) {
  return kind == acme::ChallengeSharing::Kind::kHttp01 ? "http-01" : "tls-alpn-01";
}

}  // namespace

Result<std::unique_ptr<FleetAcme>> FleetAcme::create(uv_loop_t* loop,
                                                     std::shared_ptr<fleet::EtcdStorage> fleet,
                                                     const conf::EtcdStorage& config,
                                                     acme::ChallengeStore& challenges) {
  auto watch = fleet::EtcdWatch::create(loop, config);
  if (!watch) return watch.error();
  return std::unique_ptr<FleetAcme>(
      new FleetAcme(loop, std::move(fleet), config, challenges, std::move(*watch)));
}

FleetAcme::FleetAcme(uv_loop_t* loop, std::shared_ptr<fleet::EtcdStorage> fleet,
                     const conf::EtcdStorage& config, acme::ChallengeStore& challenges,
                     std::unique_ptr<fleet::EtcdWatch> watch)
    : loop_(loop),
      fleet_(fleet),
      challenges_(challenges),
      session_(loop, std::shared_ptr<const fleet::EtcdClient>(fleet, &fleet->client()), config.node,
               config.lease,
               [this] {
                 for (auto& [site, done] : std::exchange(waiting_, {})) {
                   acquire(site, std::move(done));
                 }
               }),
      watch_(std::move(watch)),
      timer_(new uv_timer_t) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

void FleetAcme::start() {
  session_.start();
  readChallenges();
}

void FleetAcme::close() {
  if (closed_) return;
  closed_ = true;
  alive_.reset();
  watch_->close();
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(timer_), timer_);
  session_.close();  // its lease goes, and the locks and answers on it
  challenges_.setSharing(nullptr);
}

void FleetAcme::acquire(const std::string& site, Taken done) {
  // A release of this site's lock still running would delete the lock this
  // acquire finds on our lease (same node, same lease): after it, then.
  if (auto releasing = releasing_.find(site); releasing != releasing_.end()) {
    releasing->second.push_back(std::move(done));
    return;
  }
  if (session_.lease() == 0) {  // none yet (etcd unreachable): the order waits
    waiting_.emplace_back(site, std::move(done));
    return;
  }
  const std::string key = fleet::lockKey(fleet_->prefix(), "acme/" + site);
  net::offload<Result<fleet::LockState>>(
      loop_,
      [fleet = fleet_, key, node = node(), lease = session_.lease()] {
        return fleet::tryLock(fleet->client(), key, node, lease);
      },
      [this, alive = std::weak_ptr<int>(alive_), site, key,
       done = std::move(done)](Result<fleet::LockState> state) {
        if (alive.expired()) return;
        if (!state) return done(state.error());
        Lock lock;
        lock.ours = state->ours;
        lock.holder = state->holder;
        if (state->ours) {
          held_[site] = state->createRevision;
          lock.storage = fleet_->fenced(fleet::lockFence(key, state->createRevision),
                                        "the ACME order lock of site `" + site + "`");
        }
        done(std::move(lock));
      });
}

void FleetAcme::release(const std::string& site) {
  auto it = held_.find(site);
  if (it == held_.end()) return;
  const int64_t revision = it->second;
  held_.erase(it);
  releasing_[site];
  net::offload<Status>(
      loop_,
      [fleet = fleet_, key = fleet::lockKey(fleet_->prefix(), "acme/" + site), revision] {
        return fleet::unlock(fleet->client(), key, revision);
      },
      [this, alive = std::weak_ptr<int>(alive_), site](Status released) {
        // Not fatal: the lock goes with the lease at the latest.
        if (!released) log::warning("acme: site `" + site + "`: " + released.error().message);
        if (alive.expired()) return;
        auto waiting = std::move(releasing_[site]);
        releasing_.erase(site);
        for (Taken& done : waiting) acquire(site, std::move(done));
      });
}

std::string FleetAcme::challengeKey(Kind kind, const std::string& id) const {
  return fleet_->prefix() + "/challenges/" + kindName(kind) + "/" + id;
}

void FleetAcme::share(Kind kind, const std::string& id, const std::string& keyAuthorization,
                      Done done) {
  const int64_t lease = session_.lease();
  net::offload<Status>(
      loop_,
      [fleet = fleet_, key = challengeKey(kind, id), keyAuthorization, lease]() -> Status {
        if (lease == 0) {
          return makeError("fleet: no etcd lease yet (etcd unreachable?)", ErrorKind::kUnavailable);
        }
        auto put = fleet->client().put(key, keyAuthorization, lease);
        if (!put) return put.error();
        return Ok{};
      },
      [alive = std::weak_ptr<int>(alive_), done = std::move(done)](Status shared) {
        if (!alive.expired()) done(std::move(shared));
      });
}

void FleetAcme::unshare(Kind kind, const std::string& id) {
  net::offload<Status>(
      loop_,
      [fleet = fleet_, key = challengeKey(kind, id)]() -> Status {
        auto removed = fleet->client().remove(key, "");
        if (!removed) return removed.error();
        return Ok{};
      },
      [](Status) {});  // left behind, it goes with the lease
}

// Every answer the fleet holds now, then a watch from that revision.
void FleetAcme::readChallenges() {
  if (closed_) return;
  const std::string prefix = fleet_->prefix() + "/challenges/";
  net::offload<Result<fleet::EtcdClient::Range>>(
      loop_,
      [fleet = fleet_, prefix] {
        return fleet->client().range(prefix, fleet::prefixEnd(prefix), {});
      },
      [this, alive = std::weak_ptr<int>(alive_)](Result<fleet::EtcdClient::Range> read) {
        if (alive.expired()) return;
        if (!read) {
          log::warning("fleet: ACME challenges: " + read.error().message + "; retrying");
          return retryLater();
        }
        challenges_.clearShared();
        for (const fleet::KeyValue& kv : read->kvs) apply(false, kv.key, kv.value);
        watchChallenges(read->revision + 1);
      });
}

void FleetAcme::watchChallenges(int64_t fromRevision) {
  watch_->start(
      fleet_->prefix() + "/challenges/", fromRevision,
      [this](int64_t, std::vector<fleet::EtcdWatch::Event> events) {
        for (const auto& event : events) apply(event.deleted, event.kv.key, event.kv.value);
      },
      [this](Error why, int64_t) {
        log::warning("fleet: ACME challenges watch ended: " + why.message + "; reading again");
        retryLater();
      });
}

void FleetAcme::retryLater() {
  if (closed_) return;
  uv_timer_start(
      timer_, [](uv_timer_t* t) noexcept { static_cast<FleetAcme*>(t->data)->readChallenges(); },
      kRetryMs, 0);
}

void FleetAcme::apply(bool deleted, const std::string& key, const std::string& value) {
  const std::string prefix = fleet_->prefix() + "/challenges/";
  if (!key.starts_with(prefix)) return;
  const std::string rest = key.substr(prefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string::npos) return;
  const std::string kind = rest.substr(0, slash);
  const std::string id = rest.substr(slash + 1);
  Kind k;
  if (kind == kindName(Kind::kHttp01)) {
    k = Kind::kHttp01;
  } else if (kind == kindName(Kind::kTlsAlpn01)) {
    k = Kind::kTlsAlpn01;
  } else {
    return;
  }
  if (deleted) {
    challenges_.removeShared(k, id);
  } else {
    challenges_.putShared(k, id, value);
  }
}

}  // namespace tlsedge::daemon
