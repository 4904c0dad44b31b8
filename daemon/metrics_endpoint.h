// MetricsEndpoint: GET /metrics, /healthz and /readyz, served by an
// AdminServer on the `metrics.listen` TCP address, on the control loop.
//
// A scrape asks every worker for a copy of its WorkerStats (Worker::
// snapshotStats: a post to the worker, which posts the copy back), adds
// them up and answers once all have answered, or after kWorkerWait with
// what it has: a worker that does not answer in time is counted in
// tlsedge_metrics_workers_unanswered, never waited for longer. The hot path
// keeps plain per-worker integers: no shared atomic per request. The rest
// (certificate states from the snapshot being served, watcher and reload
// counters, /proc/self) is read on the control loop at the scrape.
//
//   /healthz  200 "ok": the control loop answers.
//   /readyz   200 "ready" once configuration, certificates and listeners
//             are ready (ready(true)); 503 before and while draining, and
//             while `notReady` names a reason ("not ready: REASON"; fleet
//             mode: a node with nothing to serve yet).
// Other paths 404; other methods than GET 405.
//
// Thread: control loop. Lifetime: close() before the loop ends; the workers
// outlive it.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "admin/admin_server.h"
#include "daemon/metrics.h"
#include "net/fan_in.h"
#include "net/loop.h"
#include "proxy/worker.h"

namespace tlsedge::daemon {

class MetricsEndpoint {
 public:
  static constexpr std::chrono::milliseconds kWorkerWait{1000};

  // `control` fills the control loop's part of a scrape (swaps, reloads,
  // certificate states); `poster` brings the workers' answers back to `loop`.
  MetricsEndpoint(uv_loop_t* loop, net::Poster* poster,
                  const std::vector<std::unique_ptr<proxy::Worker>>& workers,
                  std::function<void(MetricsInput&)> control);
  ~MetricsEndpoint();

  void handle(const admin::AdminRequest& request, admin::AdminServer::Reply reply);
  void setReady(bool ready) { ready_ = ready; }
  // Asked at each /readyz once ready: a reason not to be, or "".
  void setNotReady(std::function<std::string()> why) { notReady_ = std::move(why); }
  // Scrapes in progress are dropped (their clients are closed with the server).
  void close();

 private:
  struct Scrape;
  void scrape(admin::AdminServer::Reply reply);
  void finish(uint64_t id, size_t missing);

  uv_loop_t* loop_;
  net::Poster* poster_;
  const std::vector<std::unique_ptr<proxy::Worker>>& workers_;
  std::function<void(MetricsInput&)> control_;
  std::map<uint64_t, std::unique_ptr<Scrape>> scrapes_;
  uint64_t nextId_ = 0;
  bool ready_ = false;
  std::function<std::string()> notReady_;
  bool closed_ = false;
};

}  // namespace tlsedge::daemon
