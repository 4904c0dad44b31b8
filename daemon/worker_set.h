// WorkerSet: the data plane as the control loop sees it, the worker threads
// (proxy/worker.h) and the listening sockets they accept on
// (daemon/listeners.h). As a Subsystem: prepare() opens the sockets of new
// listeners (an address in use refuses the reload), commit() hands every
// worker the new generation with its listener changes, and `reloaded` runs
// once every worker has switched. The number of workers is fixed at start.
// Every "to all workers, then continue" goes through net::FanIn.
//
// Thread: the control loop. Ownership: owns the workers; start() to join().
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "daemon/listeners.h"
#include "daemon/subsystem.h"
#include "net/loop.h"
#include "proxy/worker.h"

namespace tlsedge::daemon {

class WorkerSet final : public Subsystem {
 public:
  using Workers = std::vector<std::unique_ptr<proxy::Worker>>;

  // `poster` brings the workers' acknowledgements back to the control loop;
  // `reloaded` runs there once every worker uses a committed generation.
  WorkerSet(net::Poster* poster, std::function<void()> reloaded)
      : poster_(poster), reloaded_(std::move(reloaded)) {}

  // Sockets passed in (socket activation, an upgrade), for start().
  void offerInherited(std::vector<service::InheritedSocket> sockets) {
    listeners_.offerInherited(std::move(sockets));
  }
  // Starts config.workers workers on the listeners a prepare() of
  // `generation` opened (at start, prepare() opens one socket per worker
  // to come).
  void start(const proxy::GenerationPtr& generation, const tls::TicketKeyRingPtr& ticketKeys,
             const acme::ChallengeStore* challenges, proxy::AccessLogWriter& accessLog);

  Status prepare(const proxy::Generation& next) override;
  void commit(const proxy::GenerationPtr& next) override;
  void abort() override { plan_.reset(); }

  // New handshakes select from `certificates`.
  void publishCertificates(const std::shared_ptr<const certstore::Selector>& certificates);
  // New tickets with `ring`; `applied` once every worker uses it.
  void rotateTicketKeys(const tls::TicketKeyRingPtr& ring, std::function<void()> applied);
  // Stops accepting and drains (Worker::drain); `drained` once all have.
  // `handover`: a successor accepts on the same sockets.
  void drain(uint64_t forceAfterMs, bool handover, std::function<void()> drained);
  void join();

  // The listening sockets for the next binary of an upgrade.
  std::vector<std::pair<int, std::string>> handover() const { return listeners_.handover(); }
  const Workers& workers() const { return workers_; }
  size_t size() const { return workers_.size(); }

 private:
  net::Poster* poster_;
  std::function<void()> reloaded_;
  ListenerSet listeners_;
  std::optional<ListenerSet::Plan> plan_;  // between prepare() and commit()/abort()
  Workers workers_;
};

}  // namespace tlsedge::daemon
