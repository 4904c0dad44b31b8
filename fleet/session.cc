#include "fleet/session.h"

#include <algorithm>

#include "base/log.h"
#include "net/loop.h"
#include "net/offload.h"

namespace tlsedge::fleet {
namespace {

// After a failed grant or refresh: try again soon, well inside the TTL.
constexpr std::chrono::milliseconds kRetry{1000};

}  // namespace

Session::Session(uv_loop_t* loop, std::shared_ptr<const EtcdClient> client, std::string node,
                 std::chrono::milliseconds ttl, std::function<void()> granted)
    : loop_(loop),
      client_(std::move(client)),
      node_(std::move(node)),
      ttl_(ttl),
      granted_(std::move(granted)),
      timer_(new uv_timer_t) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

Session::~Session() { close(); }

void Session::start() {
  if (!closed_) refresh();
}

void Session::close() {
  if (closed_) return;
  closed_ = true;
  alive_.reset();
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(timer_), timer_);
  if (lease_ != 0) {  // the locks and challenges go at once, not after the TTL
    net::offload<Status>(
        loop_, [client = client_, lease = lease_] { return client->revokeLease(lease); },
        [](Status) {});
  }
}

void Session::arm(std::chrono::milliseconds delay) {
  uv_timer_start(
      timer_, [](uv_timer_t* t) noexcept { static_cast<Session*>(t->data)->refresh(); },
      static_cast<uint64_t>(delay.count()), 0);
}

// Grants a lease when there is none, else refreshes it; a refresh that
// finds it gone grants the next one.
void Session::refresh() {
  if (closed_ || busy_) return;
  busy_ = true;
  const int64_t ttlSeconds =
      std::max<int64_t>(2, std::chrono::duration_cast<std::chrono::seconds>(ttl_).count());
  struct Outcome {
    Result<int64_t> lease = int64_t{0};
    bool lost = false;  // the refresh found the lease gone
  };
  net::offload<Outcome>(
      loop_,
      [client = client_, lease = lease_, ttlSeconds]() -> Outcome {
        if (lease != 0) {
          auto ttl = client->keepAlive(lease);
          if (!ttl) return {ttl.error(), false};
          if (*ttl > 0) return {lease, false};
        }
        return {client->grantLease(ttlSeconds), lease != 0};
      },
      [this, alive = std::weak_ptr<int>(alive_)](Outcome outcome) {
        if (alive.expired()) return;
        busy_ = false;
        if (outcome.lost) {
          log::warning("fleet: node `" + node_ + "` lost its etcd lease (etcd unreachable for " +
                       "longer than storage.etcd.lease): its ACME locks are gone");
        }
        if (!outcome.lease) {
          if (lease_ != 0 || grants_ == 0) {
            log::warning("fleet: etcd lease of node `" + node_ +
                         "`: " + outcome.lease.error().message + "; retrying");
          }
          return arm(kRetry);
        }
        if (*outcome.lease != lease_) {
          lease_ = *outcome.lease;
          ++grants_;
          log::info("fleet: node `" + node_ + "` holds etcd lease " + std::to_string(lease_));
          arm(ttl_ / 3);
          if (granted_) granted_();
          return;
        }
        arm(ttl_ / 3);
      });
}

std::string lockKey(const std::string& prefix, const std::string& name) {
  return prefix + "/locks/" + name;
}

Compare lockFence(const std::string& key, int64_t createRevision) {
  return {key, "", Compare::Target::kCreate, Compare::Relation::kEqual, createRevision, ""};
}

Result<LockState> readLock(const EtcdClient& client, const std::string& key, int64_t lease) {
  auto read = client.range(key, "", {});
  if (!read) return read.error();
  LockState state;
  if (read->kvs.empty()) return state;
  const KeyValue& kv = read->kvs.front();
  state.holder = kv.value;
  state.createRevision = kv.createRevision;
  state.ours = lease != 0 && kv.lease == lease;
  return state;
}

Result<LockState> tryLock(const EtcdClient& client, const std::string& key, const std::string& node,
                          int64_t lease) {
  if (lease == 0) {
    return makeError("fleet: no etcd lease yet (etcd unreachable?): lock " + key + " not taken",
                     ErrorKind::kUnavailable);
  }
  Txn txn;
  txn.compare.push_back({key, "", Compare::Target::kCreate, Compare::Relation::kEqual, 0, ""});
  txn.success.push_back({Operation::Kind::kPut, key, node, "", lease});
  // Taken or not, the key says who holds it and since which revision. Gone
  // by the time it is read: the holder released it between the two
  // requests, so the lock is free: try again (a few times, then report
  // nobody, as etcd said).
  Result<LockState> state = LockState{};
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto committed = client.txn(txn);
    if (!committed) return committed.error();
    state = readLock(client, key, lease);
    if (!state || !state->holder.empty()) break;
  }
  return state;
}

Status unlock(const EtcdClient& client, const std::string& key, int64_t createRevision) {
  Txn txn;
  txn.compare.push_back(lockFence(key, createRevision));
  txn.success.push_back({Operation::Kind::kDelete, key, "", "", 0});
  auto committed = client.txn(txn);
  if (!committed) return committed.error();
  return Ok{};
}

}  // namespace tlsedge::fleet
