#include "daemon/subsystems.h"

#include "base/log.h"
#include "certstore/file_storage.h"
#include "fleet/open_storage.h"

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

Status StorageChoice::start(uv_loop_t* loop, const conf::Config& config, Changed changed) {
  auto opened = fleet::openStorage(config);
  if (!opened) return opened.error();
  current_ = std::move(opened->storage);
  stateDir_ = config.stateDir;
  if (opened->fleet == nullptr) return Ok{};
  // The replica's copy, watched from the start.
  auto local = std::make_shared<certstore::FileStorage>(config.stateDir);
  if (Status made = local->makeDirectory("certs"); !made) return made;
  auto watch = fleet::EtcdWatch::create(loop, *config.etcd);
  if (!watch) return watch.error();
  replica_ = std::make_unique<fleet::Replica>(loop, opened->fleet, std::move(local),
                                              std::move(*watch), std::move(changed));
  replica_->start();
  log::info("fleet: certificates from " + opened->fleet->describe("certs") + " (" +
            std::to_string(config.etcd->endpoints.size()) + " etcd endpoints), served from " +
            config.stateDir + "/certs");
  return Ok{};
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
  watch(next->config);
}

void CertificateFeed::publish(std::shared_ptr<const certstore::Selector> next) {
  current_ = std::move(next);
  ++published_;
  workers_.publishCertificates(current_);
}

void CertificateFeed::watch(const conf::ConfigPtr& config) {
  watcher_.watch(config->certificates);
  watcher_.watchStore(config);
}

TicketKeys::TicketKeys(uv_loop_t* loop, WorkerSet& workers, const conf::Tls& tls)
    : workers_(workers),
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

void TicketKeys::close() { uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr); }

void TicketKeys::schedule() {
  scheduled_ = tls_.ticketKeyRotation;
  const auto ms = static_cast<uint64_t>(scheduled_.count());
  uv_timer_start(
      &timer_, [](uv_timer_t* t) noexcept { static_cast<TicketKeys*>(t->data)->rotate(); }, ms, ms);
}

// A new current key; the previous current one and up to
// tls.ticket_keys_kept - 1 older ones still decrypt. Logged (never the key
// bytes) once every worker uses the new ring.
void TicketKeys::rotate() {
  ring_ = ring_->rotated(static_cast<size_t>(tls_.ticketKeysKept),
                         tls::ticketLifetime(tls_.ticketKeyRotation, tls_.ticketKeysKept));
  const uint64_t seq = ++rotations_;
  workers_.rotateTicketKeys(ring_, [this, seq] {
    log::debug("ticket keys rotated (" + std::to_string(seq) + "): 1 current, " +
               std::to_string(ring_->size() - 1) + " previous");
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
  if (config.etcd != etcd_) {
    log::warning("reload: storage changes at the next restart (running " +
                 (etcd_ ? "etcd " + etcd_->endpoints.front() + " " + etcd_->prefix
                        : std::string("the state directory")) +
                 ")");
  }
}

}  // namespace tlsedge::daemon
