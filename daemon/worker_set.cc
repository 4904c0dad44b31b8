#include "daemon/worker_set.h"

#include "base/log.h"
#include "net/fan_in.h"
#include "tls/tls_context.h"

namespace tlsedge::daemon {

void WorkerSet::start(const proxy::GenerationPtr& generation,
                      const tls::TicketKeyRingPtr& ticketKeys,
                      const acme::ChallengeStore* challenges, proxy::AccessLogWriter& accessLog) {
  const conf::Config& config = *generation->config;
  auto updates = listeners_.commit(std::move(*plan_));
  plan_.reset();
  for (int w = 0; w < config.workers; ++w) {
    workers_.push_back(std::make_unique<proxy::Worker>(
        w, std::move(updates[static_cast<size_t>(w)]), makeServerContext(config.tls, ticketKeys),
        generation, challenges, accessLog));
  }
  for (auto& w : workers_) w->start();
}

Status WorkerSet::prepare(const proxy::Generation& next) {
  const int workers = workers_.empty() ? next.config->workers : static_cast<int>(workers_.size());
  auto plan = listeners_.prepare(*next.config, workers);
  if (!plan) return plan.error();
  plan_ = std::move(*plan);
  return Ok{};
}

void WorkerSet::commit(const proxy::GenerationPtr& next) {
  if (next->config->workers != static_cast<int>(workers_.size())) {
    log::warning("reload: the number of workers changes at the next restart (running " +
                 std::to_string(workers_.size()) + ")");
  }
  auto updates = listeners_.commit(std::move(*plan_));
  plan_.reset();
  auto applied =
      net::FanIn::start(*poster_, workers_.size(), [reloaded = reloaded_](size_t) { reloaded(); });
  for (size_t w = 0; w < workers_.size(); ++w) {
    workers_[w]->reconfigure(next, std::move(updates[w]), [applied] { applied->arrive(); });
  }
}

void WorkerSet::publishCertificates(
    const std::shared_ptr<const certstore::Selector>& certificates) {
  for (auto& w : workers_) w->publishCertificates(certificates);
}

void WorkerSet::rotateTicketKeys(const tls::TicketKeyRingPtr& ring, std::function<void()> applied) {
  auto all = net::FanIn::start(*poster_, workers_.size(),
                               [applied = std::move(applied)](size_t) { applied(); });
  for (auto& w : workers_) w->rotateTicketKeys(ring, [all] { all->arrive(); });
}

void WorkerSet::drain(uint64_t forceAfterMs, bool handover, std::function<void()> drained) {
  auto all = net::FanIn::start(*poster_, workers_.size(),
                               [drained = std::move(drained)](size_t) { drained(); });
  for (auto& w : workers_)
    w->drain(
        forceAfterMs, [all] { all->arrive(); }, !handover);
}

void WorkerSet::join() {
  for (auto& w : workers_) w->join();
  workers_.clear();
}

}  // namespace tlsedge::daemon
