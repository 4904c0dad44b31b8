// Session: this node's etcd lease, kept alive while the process runs (what
// etcd's concurrency.Session is to its Go clients), and the locks held on
// it.
//
// What a node puts under its lease (an ACME order's lock, the challenge
// answers every node serves for that order) vanishes `storage.etcd.lease`
// after the node dies or loses etcd, so another node can take over. The
// lease is granted at start() and refreshed every third of its TTL; a
// refresh that finds it gone (etcd unreachable for longer than the TTL)
// grants a new one, and what was held on the old one is lost: the fenced
// storage of a lock taken on it (EtcdStorage::fenced) then refuses every
// write.
//
// A lock is the key PREFIX/locks/NAME holding the node's name, created on
// the lease only where no key is (a txn on create_revision 0). Its create
// revision is the fencing token: writes made under the lock compare it.
//
// Thread: the Session on the control loop (etcd calls on libuv's thread
// pool); tryLock and unlock block (thread pool).
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "fleet/etcd_client.h"

namespace tlsedge::fleet {

class Session {
 public:
  // `granted` runs on the control loop each time a lease is granted.
  Session(uv_loop_t* loop, std::shared_ptr<const EtcdClient> client, std::string node,
          std::chrono::milliseconds ttl, std::function<void()> granted);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();
  // Revokes the lease (pool thread, not awaited) and stops refreshing.
  void close();

  // The lease, 0 while none is granted (etcd unreachable).
  int64_t lease() const { return lease_; }
  const std::string& node() const { return node_; }
  // Leases granted since start (the first, then one per lease lost).
  uint64_t grants() const { return grants_; }

 private:
  void refresh();
  void arm(std::chrono::milliseconds delay);

  uv_loop_t* loop_;
  std::shared_ptr<const EtcdClient> client_;
  std::string node_;
  std::chrono::milliseconds ttl_;
  std::function<void()> granted_;
  uv_timer_t* timer_;
  int64_t lease_ = 0;
  uint64_t grants_ = 0;
  bool busy_ = false;  // a grant or refresh is on the pool
  bool closed_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // pool callbacks check it
};

// A lock's state as read or taken.
struct LockState {
  bool ours = false;           // taken (or already held) on `lease`
  std::string holder;          // the holding node's name; empty: nobody holds it
  int64_t createRevision = 0;  // the fencing token of the holder's lock
};

// The etcd key of lock `name` ("acme/shop") under `prefix`.
std::string lockKey(const std::string& prefix, const std::string& name);
// Takes lock `key` for `node` on `lease`, or says who holds it.
Result<LockState> tryLock(const EtcdClient& client, const std::string& key, const std::string& node,
                          int64_t lease);
// Who holds lock `key` now.
Result<LockState> readLock(const EtcdClient& client, const std::string& key, int64_t lease);
// Releases lock `key` if it is still the one taken at `createRevision`.
Status unlock(const EtcdClient& client, const std::string& key, int64_t createRevision);
// The compare a write under lock `key` carries (EtcdStorage::fenced).
Compare lockFence(const std::string& key, int64_t createRevision);

}  // namespace tlsedge::fleet
