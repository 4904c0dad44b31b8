#include "daemon/metrics_endpoint.h"

#include <ctime>

#include "base/log.h"
#include "base/version.h"
#include "net/offload.h"

namespace tlsedge::daemon {
namespace {

admin::AdminResponse plain(int status, std::string body) {
  admin::AdminResponse r;
  r.status = status;
  r.contentType = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

void closeTimer(uv_timer_t* timer) {
  uv_close(reinterpret_cast<uv_handle_t*>(timer),
           [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_timer_t*>(h); });
}

}  // namespace

struct MetricsEndpoint::Scrape {
  admin::AdminServer::Reply reply;
  MetricsInput input;
  std::shared_ptr<net::FanIn> round;  // every worker's stats, folded into input
  uv_timer_t* timer = nullptr;
};

MetricsEndpoint::MetricsEndpoint(uv_loop_t* loop, net::Poster* poster,
                                 const std::vector<std::unique_ptr<proxy::Worker>>& workers,
                                 std::function<void(MetricsInput&)> control)
    : loop_(loop), poster_(poster), workers_(workers), control_(std::move(control)) {}

MetricsEndpoint::~MetricsEndpoint() { close(); }

void MetricsEndpoint::close() {
  closed_ = true;
  for (auto& [id, s] : scrapes_) closeTimer(s->timer);
  scrapes_.clear();
}

void MetricsEndpoint::handle(const admin::AdminRequest& request, admin::AdminServer::Reply reply) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  if (path != "/metrics" && path != "/healthz" && path != "/readyz") {
    reply(plain(404, "not found; try /metrics, /healthz or /readyz\n"));
    return;
  }
  if (request.method != "GET") {
    admin::AdminResponse r = plain(405, "method not allowed\n");
    r.allow = "GET";
    reply(std::move(r));
    return;
  }
  if (path == "/healthz") {
    reply(plain(200, "ok\n"));
  } else if (path == "/readyz") {
    const std::string why = ready_ && notReady_ ? notReady_() : std::string();
    reply(!ready_       ? plain(503, "not ready\n")
          : why.empty() ? plain(200, "ready\n")
                        : plain(503, "not ready: " + why + "\n"));
  } else {
    scrape(std::move(reply));
  }
}

void MetricsEndpoint::scrape(admin::AdminServer::Reply reply) {
  if (closed_) return;
  const uint64_t id = ++nextId_;
  auto s = std::make_unique<Scrape>();
  s->reply = std::move(reply);
  s->input.workers = workers_.size();
  s->timer = new uv_timer_t;
  uv_timer_init(loop_, s->timer);
  s->timer->data = this;
  Scrape* scrape = s.get();
  scrapes_.emplace(id, std::move(s));
  // The timer's data is the endpoint; the scrape rides in a map lookup.
  uv_timer_start(
      scrape->timer,
      [](uv_timer_t* t) noexcept {
        auto* self = static_cast<MetricsEndpoint*>(t->data);
        for (auto& [sid, sc] : self->scrapes_) {
          if (sc->timer == t) {
            sc->round->finishNow();
            return;
          }
        }
      },
      static_cast<uint64_t>(kWorkerWait.count()), 0);
  auto round = net::FanIn::start(*poster_, workers_.size(),
                                 [this, id](size_t missing) { finish(id, missing); });
  if (!scrapes_.contains(id)) return;  // no workers: finished already
  scrape->round = round;
  for (const auto& worker : workers_) {
    worker->snapshotStats([this, id, round](const proxy::WorkerStats& stats, size_t connections) {
      // Worker thread: copy, and fold the copy on the control loop.
      round->arrive([this, id, copy = stats, connections] {
        auto it = scrapes_.find(id);
        if (it == scrapes_.end()) return;
        it->second->input.traffic.add(copy);
        it->second->input.activeConnections += connections;
      });
    });
  }
}

void MetricsEndpoint::finish(uint64_t id, size_t missing) {
  auto it = scrapes_.find(id);
  if (it == scrapes_.end()) return;
  std::unique_ptr<Scrape> s = std::move(it->second);
  scrapes_.erase(it);
  closeTimer(s->timer);
  s->input.workersUnanswered = missing;
  if (missing > 0) {
    log::warning("metrics: " + std::to_string(missing) + " worker(s) did not answer within " +
                 std::to_string(kWorkerWait.count()) + " ms; scraped without them");
  }
  if (control_) control_(s->input);
  s->input.process = readProcessStats();
  s->input.version = version();
  // Counting the certificates' states and rendering the text are
  // O(certificates) (~20 ms at 100k): done on the thread pool, so a scrape
  // does not stall the control loop.
  auto input = std::make_shared<MetricsInput>(std::move(s->input));
  net::offload<std::string>(
      loop_, [input] { return renderMetrics(std::move(*input), ::time(nullptr)); },
      [reply = std::move(s->reply)](std::string text) {
        admin::AdminResponse r = plain(200, std::move(text));
        r.contentType = kMetricsContentType;
        reply(std::move(r));
      });
}

}  // namespace tlsedge::daemon
