// FleetAcme: ACME once per fleet. What the ACME manager and the challenge
// store need from etcd (acme/order_locks.h, acme::ChallengeSharing), on
// this node's lease (fleet/session.h):
//  - each site's order lock is PREFIX/locks/acme/SITE, holding the node's
//    name; the manager writes under it through a fenced EtcdStorage;
//  - each challenge answer this node gives is PREFIX/challenges/KIND/ID
//    (KIND http-01 with the token as ID, tls-alpn-01 with the host), the
//    key authorization as value; every node reads them all, then watches,
//    into its ChallengeStore's shared layer, so the CA's validation (and
//    the pre-flight probe) may reach any node. A node that dies takes its
//    locks and answers with it when its lease expires.
//
// Thread: the control loop; etcd calls on libuv's thread pool.
#pragma once

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "acme/challenge_store.h"
#include "acme/order_locks.h"
#include "base/result.h"
#include "conf/config.h"
#include "fleet/etcd_storage.h"
#include "fleet/etcd_watch.h"
#include "fleet/session.h"

namespace tlsedge::daemon {

class FleetAcme final : public acme::OrderLocks, public acme::ChallengeSharing {
 public:
  // Errors: etcd's TLS files (as the replica's watch).
  static Result<std::unique_ptr<FleetAcme>> create(uv_loop_t* loop,
                                                   std::shared_ptr<fleet::EtcdStorage> fleet,
                                                   const conf::EtcdStorage& config,
                                                   acme::ChallengeStore& challenges);
  ~FleetAcme() override { close(); }

  void start();
  void close();
  const fleet::Session& session() const { return session_; }
  uint64_t watchStreams() const { return watch_->streams(); }

  const std::string& node() const override { return session_.node(); }
  void acquire(const std::string& site, Taken done) override;
  void release(const std::string& site) override;

  void share(Kind kind, const std::string& id, const std::string& keyAuthorization,
             Done done) override;
  void unshare(Kind kind, const std::string& id) override;

 private:
  FleetAcme(uv_loop_t* loop, std::shared_ptr<fleet::EtcdStorage> fleet,
            const conf::EtcdStorage& config, acme::ChallengeStore& challenges,
            std::unique_ptr<fleet::EtcdWatch> watch);
  std::string challengeKey(Kind kind, const std::string& id) const;
  void readChallenges();
  void watchChallenges(int64_t fromRevision);
  void retryLater();
  void apply(bool deleted, const std::string& key, const std::string& value);

  uv_loop_t* loop_;
  std::shared_ptr<fleet::EtcdStorage> fleet_;
  acme::ChallengeStore& challenges_;
  fleet::Session session_;
  std::unique_ptr<fleet::EtcdWatch> watch_;
  uv_timer_t* timer_;
  std::map<std::string, int64_t> held_;  // site -> its lock's create revision
  // Sites whose lock is being released, and the acquires waiting for it.
  std::map<std::string, std::vector<Taken>> releasing_;
  // Asked for before the first lease: taken once it is granted.
  std::vector<std::pair<std::string, Taken>> waiting_;
  bool closed_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // pool callbacks check it
};

}  // namespace tlsedge::daemon
