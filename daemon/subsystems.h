// The control loop's subsystems besides the workers (daemon/worker_set.h),
// each with its own reload policy (daemon/subsystem.h). In reload order:
//
//   WorkerSet      listeners + generation to every worker   (can refuse)
//   AccessLogFile  the access log's file, reopened           (can refuse)
//   StorageChoice  where certificates and ACME state persist
//   AcmeOrders     challenges on disk, ACME sites rescheduled
//   CertificateFeed  the generation's certificates published, the files
//                  and the store watched
//   TicketKeys     the rotation period
//   FixedAtStart   what only a restart changes: a warning
//
// Thread: the control loop.
#pragma once

#include <uv.h>

#include <memory>
#include <optional>
#include <string>

#include "acme/manager.h"
#include "certstore/certificate_watcher.h"
#include "conf/config.h"
#include "daemon/fleet_acme.h"
#include "daemon/subsystem.h"
#include "daemon/worker_set.h"
#include "fleet/etcd_storage.h"
#include "fleet/replica.h"
#include "proxy/access_log.h"
#include "tls/ticket_keys.h"

namespace tlsedge::daemon {

class AccessLogFile final : public Subsystem {
 public:
  Status start(const conf::Config& config) { return writer_.open(config.accessLog); }
  // Opens the new file (or the same path again: how rotation works).
  Status prepare(const proxy::Generation& next) override;
  void commit(const proxy::GenerationPtr& next) override;
  void abort() override { pending_.reset(); }
  // Outlives the workers, which write to it.
  proxy::AccessLogWriter& writer() { return writer_; }

 private:
  proxy::AccessLogWriter writer_;
  std::optional<proxy::AccessLogWriter::Destination> pending_;
};

// The storage the daemon writes certificates and ACME state to
// (fleet::openStorage), handed to ACME and the admin API: opened at start,
// and again by a reload that changes state_dir (`storage:` itself changes
// at a restart: FixedAtStart). In fleet mode it also keeps the node's
// store a replica of the fleet's (fleet/replica.h), which tells `changed`
// of each entry it writes.
class StorageChoice final : public Subsystem {
 public:
  using Changed = fleet::Replica::Changed;
  // Errors: the fleet key or etcd's TLS files (the daemon does not start).
  // In fleet mode, two replicas keep the state directory's certificates
  // and API sites copies of etcd's, telling `certificates` of each entry
  // written and `sites` of each site.
  Status start(uv_loop_t* loop, const conf::Config& config, Changed certificates, Changed sites);
  void commit(const proxy::GenerationPtr& next) override;
  void close();
  const certstore::StoragePtr& current() const { return current_; }
  // Null on a single node.
  const fleet::Replica* replica() const { return replica_.get(); }
  const fleet::Replica* sitesReplica() const { return sitesReplica_.get(); }
  const std::shared_ptr<fleet::EtcdStorage>& fleet() const { return fleet_; }
  // Why the node should get no traffic yet, or "": in fleet mode, a state
  // directory that held no entry at start, until the first full read of
  // etcd is written and applied (`applying`: the store watcher has entries
  // to apply); a new node would serve only the default certificate. Once
  // "", always. A node with a copy serves it, etcd reachable or not.
  std::string notReady(bool applying);

 private:
  bool served_ = false;  // the state directory held entries at start, or the first read applied
  certstore::StoragePtr current_;
  std::string stateDir_;
  std::shared_ptr<fleet::EtcdStorage> fleet_;
  std::unique_ptr<fleet::Replica> replica_;       // certs
  std::unique_ptr<fleet::Replica> sitesReplica_;  // sites
};

// The ACME manager and the HTTP-01/TLS-ALPN-01 answers the workers read.
class AcmeOrders final : public Subsystem {
 public:
  // `issued` is told the store entry of each certificate ACME wrote;
  // `storage` (committed before this) says where ACME keeps its state.
  // In fleet mode the orders are the fleet's (daemon/fleet_acme.h): one
  // node orders each site, and every node answers every challenge.
  AcmeOrders(uv_loop_t* loop, const StorageChoice& storage, acme::Manager::Issued issued)
      : loop_(loop), storage_(storage), manager_(loop, challenges_, std::move(issued)) {}
  // Errors: etcd's TLS files (fleet mode).
  Status start(const conf::Config& config);
  void commit(const proxy::GenerationPtr& next) override { configure(*next->config); }
  void close();
  const acme::ChallengeStore& challenges() const { return challenges_; }
  acme::Manager& manager() { return manager_; }
  // Null on a single node.
  const FleetAcme* fleet() const { return fleet_.get(); }

 private:
  void configure(const conf::Config& config);
  uv_loop_t* loop_;
  const StorageChoice& storage_;
  acme::ChallengeStore challenges_;   // before manager_, which keeps a reference
  std::unique_ptr<FleetAcme> fleet_;  // before manager_, which uses it
  acme::Manager manager_;
};

// What workers select certificates from: the generation's at start and
// reload, then one-certificate updates and store rebuilds from the watcher.
class CertificateFeed final : public Subsystem {
 public:
  CertificateFeed(uv_loop_t* loop, WorkerSet& workers,
                  std::shared_ptr<const certstore::Selector> initial);
  void start(const conf::ConfigPtr& config) { watch(config); }
  // The store bindings of `snapshot`, built off the loop: the next commit
  // of a generation holding that snapshot takes them instead of building
  // them on the loop (O(sites + store)).
  void offerBindings(std::unique_ptr<certstore::StoreBindings> bindings,
                     const certstore::Selector* snapshot) {
    offered_ = std::move(bindings);
    offeredFor_ = snapshot;
  }
  void commit(const proxy::GenerationPtr& next) override;
  const std::shared_ptr<const certstore::Selector>& current() const { return current_; }
  uint64_t generation() const { return published_; }
  certstore::CertificateWatcher& watcher() { return watcher_; }

 private:
  void publish(std::shared_ptr<const certstore::Selector> next);
  void watch(const conf::ConfigPtr& config,
             std::unique_ptr<certstore::StoreBindings> bindings = nullptr);
  WorkerSet& workers_;
  std::unique_ptr<certstore::StoreBindings> offered_;  // offerBindings()
  const certstore::Selector* offeredFor_ = nullptr;
  std::shared_ptr<const certstore::Selector> current_;
  uint64_t published_ = 1;  // snapshots published; 1: the one loaded at start
  certstore::CertificateWatcher watcher_;
};

// Session ticket keys: one ring for every worker, rotated on a timer. A
// reload keeps the keys (it would invalidate every session); a new period
// restarts the schedule, a new number of kept keys applies at the next
// rotation.
// The session ticket keys every worker holds. On a single node this node
// rotates them every tls.ticket_key_rotation. In fleet mode the ring is the
// fleet's (fleet_tickets.h): read from etcd every refresh period, and
// rotated there once per period by whichever node gets there first; held
// in memory only.
class TicketKeys final : public Subsystem {
 public:
  TicketKeys(uv_loop_t* loop, WorkerSet& workers, const conf::Tls& tls);
  // `fleet`: the fleet's storage, null on a single node.
  void start(std::shared_ptr<fleet::EtcdStorage> fleet);
  void commit(const proxy::GenerationPtr& next) override;
  void close();
  const tls::TicketKeyRingPtr& ring() const { return ring_; }

 private:
  void schedule();
  void rotate();
  void syncFleet();
  void use(tls::TicketKeyRingPtr ring, const std::string& why);
  uv_loop_t* loop_;
  WorkerSet& workers_;
  conf::Tls tls_;
  conf::Duration scheduled_{};
  tls::TicketKeyRingPtr ring_;  // current + previous, the same for every worker
  uv_timer_t timer_;
  uint64_t rotations_ = 0;
  std::shared_ptr<fleet::EtcdStorage> fleet_;
  bool syncing_ = false;  // a read of the fleet's ring is on the pool
  enum class FleetState { kUnknown, kOk, kFailing } fleetState_ = FleetState::kUnknown;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // pool callbacks check it
};

// Settings a reload cannot change: the admin socket and the metrics
// address are bound once, the storage backend (`storage:`) is chosen once.
// A change is logged, never refused.
class FixedAtStart final : public Subsystem {
 public:
  // `adminSocket`: the running path, "" without one; `metrics`: the bound
  // "host:port" and port, nullopt without an endpoint; `etcd`: the start
  // config's `storage.etcd`, nullopt for the state directory.
  FixedAtStart(std::string adminSocket, std::optional<std::pair<std::string, uint16_t>> metrics,
               std::optional<conf::EtcdStorage> etcd, std::optional<conf::Management> management)
      : adminSocket_(std::move(adminSocket)),
        metrics_(std::move(metrics)),
        etcd_(std::move(etcd)),
        management_(std::move(management)) {}
  void commit(const proxy::GenerationPtr& next) override;

 private:
  std::string adminSocket_;
  std::optional<std::pair<std::string, uint16_t>> metrics_;
  std::optional<conf::EtcdStorage> etcd_;
  std::optional<conf::Management> management_;  // admin.listen, tls, clients
};

}  // namespace tlsedge::daemon
