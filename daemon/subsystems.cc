#include "daemon/subsystems.h"

#include "base/log.h"
#include "certstore/file_storage.h"
#include "daemon/fleet_tickets.h"
#include "fleet/open_storage.h"
#include "net/offload.h"

namespace tlsedge::daemon {

Status AccessLogFile::prepare(const proxy::Generation& next) {
  auto destination = proxy::AccessLogWriter::openDestination(next.config->accessLog);
  if (!destination) return destination.error();
  pending_.emplace(std::move(*destination));
  return Ok{};
}

void AccessLogFile::commit(const proxy::GenerationPtr&) {
  writer_.use(std::move(*pending_));
  pending_.reset();
}

Status StorageChoice::start(uv_loop_t* loop, const conf::Config& config, Changed certificates,
                            Changed sites) {
  auto opened = fleet::openStorage(config);
  if (!opened) return opened.error();
  current_ = std::move(opened->storage);
  stateDir_ = config.stateDir;
  fleet_ = opened->fleet;
  if (opened->fleet == nullptr) return Ok{};
  // The replicas' copies, watched from the start.
  auto local = std::make_shared<certstore::FileStorage>(config.stateDir);
  auto held = local->list(fleet::kCertificates.name);
  served_ = held && !held->empty();
  auto replicate = [&](const fleet::Collection& collection,
                       Changed changed) -> Result<std::unique_ptr<fleet::Replica>> {
    if (Status made = local->makeDirectory(collection.name); !made) return made.error();
    auto watch = fleet::EtcdWatch::create(loop, *config.etcd);
    if (!watch) return watch.error();
    auto replica = std::make_unique<fleet::Replica>(loop, opened->fleet, local, collection,
                                                    std::move(*watch), std::move(changed));
    replica->start();
    log::info("fleet: " + collection.name + " from " + opened->fleet->describe(collection.name) +
              " (" + std::to_string(config.etcd->endpoints.size()) +
              " etcd endpoints), served from " + local->describe(collection.name));
    return replica;
  };
  auto made = replicate(fleet::kCertificates, std::move(certificates));
  if (!made) return made.error();
  replica_ = std::move(*made);
  made = replicate(fleet::kSites, std::move(sites));
  if (!made) return made.error();
  sitesReplica_ = std::move(*made);
  return Ok{};
}

std::string StorageChoice::notReady(bool applying) {
  if (replica_ == nullptr || served_) return "";
  if (!replica_->stats().caughtUp) {
    return "the state directory held no certificate and the first read of " +
           fleet_->describe("certs") + " has not completed";
  }
  if (applying)
    return "the certificates read from " + fleet_->describe("certs") + " are being applied";
  served_ = true;
  return "";
}

void StorageChoice::commit(const proxy::GenerationPtr& next) {
  const conf::Config& config = *next->config;
  if (replica_ == nullptr && config.stateDir != stateDir_ && !config.etcd) {
    current_ = certstore::FileStorage::open(config.stateDir);
    stateDir_ = config.stateDir;
  }
}

void StorageChoice::close() {
  if (replica_ != nullptr) replica_->close();
  if (sitesReplica_ != nullptr) sitesReplica_->close();
}

Status AcmeOrders::start(const conf::Config& config) {
  if (storage_.fleet() != nullptr && config.etcd) {
    auto made = FleetAcme::create(loop_, storage_.fleet(), *config.etcd, challenges_);
    if (!made) return made.error();
    fleet_ = std::move(*made);
    challenges_.setSharing(fleet_.get());
    manager_.setOrderLocks(fleet_.get());
    fleet_->start();
  }
  configure(config);
  return Ok{};
}

void AcmeOrders::close() {
  manager_.close();
  if (fleet_ != nullptr) fleet_->close();
}

void AcmeOrders::configure(const conf::Config& config) {
  auto loaded = challenges_.loadDirectory(config.stateDir + "/acme/challenges");
  if (!loaded) log::warning(loaded.error().message);
  manager_.configure(config, storage_.current());
}

CertificateFeed::CertificateFeed(uv_loop_t* loop, WorkerSet& workers,
                                 std::shared_ptr<const certstore::Selector> initial)
    : workers_(workers),
      current_(std::move(initial)),
      watcher_(
          loop, [this] { return current_; },
          [this](std::shared_ptr<const certstore::Selector> next) { publish(std::move(next)); }) {}

// The reload rebuilt the certificates from the files: published after the
// generation, in the same queue to each worker.
void CertificateFeed::commit(const proxy::GenerationPtr& next) {
  publish(next->selector);
  std::unique_ptr<certstore::StoreBindings> built = std::move(offered_);
  if (offeredFor_ != next->selector.get()) built.reset();  // offered for another snapshot
  offeredFor_ = nullptr;
  watch(next->config, std::move(built));
}

void CertificateFeed::publish(std::shared_ptr<const certstore::Selector> next) {
  current_ = std::move(next);
  ++published_;
  workers_.publishCertificates(current_);
}

void CertificateFeed::watch(const conf::ConfigPtr& config,
                            std::unique_ptr<certstore::StoreBindings> bindings) {
  watcher_.watch(config->certificates);
  watcher_.watchStore(config, std::move(bindings));
}

TicketKeys::TicketKeys(uv_loop_t* loop, WorkerSet& workers, const conf::Tls& tls)
    : loop_(loop),
      workers_(workers),
      tls_(tls),
      ring_(tls::TicketKeyRing::generate(
          tls::ticketLifetime(tls.ticketKeyRotation, tls.ticketKeysKept))) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
}

void TicketKeys::commit(const proxy::GenerationPtr& next) {
  const bool rescheduled = next->config->tls.ticketKeyRotation != scheduled_;
  tls_ = next->config->tls;
  if (rescheduled) schedule();
}

void TicketKeys::start(std::shared_ptr<fleet::EtcdStorage> fleet) {
  fleet_ = std::move(fleet);
  schedule();
  if (fleet_ != nullptr) syncFleet();
}

void TicketKeys::close() {
  alive_.reset();
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void TicketKeys::schedule() {
  scheduled_ = tls_.ticketKeyRotation;
  const auto ms = static_cast<uint64_t>(fleet_ != nullptr ? fleetRefreshPeriod(scheduled_).count()
                                                          : scheduled_.count());
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) noexcept {
        auto* self = static_cast<TicketKeys*>(t->data);
        return self->fleet_ != nullptr ? self->syncFleet() : self->rotate();
      },
      ms, ms);
}

// A new current key; the previous current one and up to
// tls.ticket_keys_kept - 1 older ones still decrypt.
void TicketKeys::rotate() {
  use(ring_->rotated(static_cast<size_t>(tls_.ticketKeysKept),
                     tls::ticketLifetime(tls_.ticketKeyRotation, tls_.ticketKeysKept)),
      "rotated");
}

// Logged (never the key bytes) once every worker uses the new ring.
void TicketKeys::use(tls::TicketKeyRingPtr ring, const std::string& why) {
  ring_ = std::move(ring);
  const uint64_t seq = ++rotations_;
  workers_.rotateTicketKeys(ring_, [this, seq, why] {
    log::debug("ticket keys " + why + " (" + std::to_string(seq) +
               "): " + std::to_string(ring_->size()) + " keys");
  });
}

void TicketKeys::syncFleet() {
  if (syncing_) return;
  syncing_ = true;
  std::shared_ptr<fleet::EtcdStorage> fleet = fleet_;
  const conf::Tls tls = tls_;
  std::weak_ptr<int> alive = alive_;
  net::offload<Result<tls::TicketKeyRingPtr>>(
      loop_, [fleet, tls] { return syncFleetTicketRing(*fleet, tls, ::time(nullptr)); },
      [this, alive](Result<tls::TicketKeyRingPtr> synced) {
        if (alive.expired()) return;
        syncing_ = false;
        if (!synced) {  // logged once a failing streak
          if (fleetState_ != FleetState::kFailing) {
            log::warning("fleet: ticket keys: " + synced.error().message +
                         "; this node keeps the ring it has");
          }
          fleetState_ = FleetState::kFailing;
          return;
        }
        if (fleetState_ != FleetState::kOk) {
          log::info("fleet: ticket keys from " + fleet_->describe(kFleetTicketRing));
        }
        fleetState_ = FleetState::kOk;
        if ((*synced)->current().name != ring_->current().name ||
            (*synced)->size() != ring_->size()) {
          use(std::move(*synced), "from the fleet");
        }
      });
}

void FixedAtStart::commit(const proxy::GenerationPtr& next) {
  const conf::Config& config = *next->config;
  if (config.adminSocket != adminSocket_) {
    log::warning("reload: admin.socket changes at the next restart (running " +
                 (adminSocket_.empty() ? std::string("none") : adminSocket_) + ")");
  }
  const bool moved = config.metricsListen && metrics_ && config.metricsListen->port != 0 &&
                     config.metricsListen->port != metrics_->second;
  if (config.metricsListen.has_value() != metrics_.has_value() || moved) {
    log::warning("reload: metrics.listen changes at the next restart (running " +
                 (metrics_ ? metrics_->first : std::string("none")) + ")");
  }
  if (config.management != management_) {
    log::warning("reload: admin.listen, admin.tls and admin.clients change at the next restart");
  }
  if (config.etcd != etcd_) {
    log::warning("reload: storage changes at the next restart (running " +
                 (etcd_ ? "etcd " + etcd_->endpoints.front() + " " + etcd_->prefix
                        : std::string("the state directory")) +
                 ")");
  }
}

}  // namespace tlsedge::daemon
