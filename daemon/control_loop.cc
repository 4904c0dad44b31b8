#include "daemon/control_loop.h"

#include <signal.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <vector>

#include "acme/manager.h"
#include "admin/admin_api.h"
#include "admin/admin_server.h"
#include "base/log.h"
#include "certstore/certificate_watcher.h"
#include "daemon/listeners.h"
#include "daemon/metrics_endpoint.h"
#include "daemon/service_manager.h"
#include "daemon/upgrade.h"
#include "net/fan_in.h"
#include "net/loop.h"
#include "net/offload.h"
#include "net/signal_watcher.h"
#include "proxy/worker.h"
#include "tls/ticket_keys.h"

namespace tlsedge::proxy {
namespace {

// Logs a failed notification (systemd waits for READY=1 until its timeout).
void notifyServiceManager(const std::string& state) {
  if (auto sent = service::notify(state); !sent) log::warning(sent.error().message);
}

class ControlLoop {
 public:
  ControlLoop(std::string configPath, GenerationPtr generation, std::vector<std::string> argv,
              std::vector<service::InheritedSocket> inherited)
      : configPath_(std::move(configPath)),
        generation_(std::move(generation)),
        certificates_(generation_->selector),
        argv_(std::move(argv)),
        inherited_(std::move(inherited)) {}

  int run() {
    const conf::Config& config = *generation_->config;
    // The admin socket passed in (socket activation, an upgrade) is the one
    // whose path is admin.socket; every other one is for listeners_.
    int adminFd = -1;
    std::erase_if(inherited_, [&](const service::InheritedSocket& s) {
      if (adminFd >= 0 || s.family != AF_UNIX || !s.stream || config.adminSocket.empty() ||
          s.address != config.adminSocket) {
        return false;
      }
      adminFd = s.fd;
      return true;
    });
    listeners_.offerInherited(std::move(inherited_));
    // First, before any thread creates a file: bind() sets the umask around it.
    if (adminFd >= 0) {
      auto adopted = AdminServer::adopt(adminFd, config.adminSocket);
      if (!adopted) {
        log::error(adopted.error().message);
        return 1;
      }
      admin_ = std::move(*adopted);
    } else if (!config.adminSocket.empty()) {
      auto bound = AdminServer::bind(config.adminSocket);
      if (!bound) {
        log::error(bound.error().message);
        return 1;
      }
      admin_ = std::move(*bound);
    }
    if (config.metricsListen) {
      auto bound = AdminServer::bindTcp(*config.metricsListen, "metrics");
      if (!bound) {
        log::error(bound.error().message);
        return 1;
      }
      metricsServer_ = std::move(*bound);
    }
    auto plan = listeners_.prepare(config, config.workers);
    if (!plan) {
      log::error(plan.error().message);
      return 1;
    }
    if (auto opened = accessLog_.open(config.accessLog); !opened) {
      log::error(opened.error().message);
      return 1;
    }
    auto loaded = challenges_.loadDirectory(config.stateDir + "/acme/challenges");
    if (!loaded) log::warning(loaded.error().message);

    // Ticket keys live as long as the process: a reload keeps them, so that
    // it does not invalidate every session.
    ticketKeys_ = TicketKeyRing::generate(
        ticketLifetime(config.tls.ticketKeyRotation, config.tls.ticketKeysKept));
    auto updates = listeners_.commit(std::move(*plan));
    for (int w = 0; w < config.workers; ++w) {
      workers_.push_back(std::make_unique<Worker>(w, std::move(updates[static_cast<size_t>(w)]),
                                                  makeServerContext(config.tls, ticketKeys_),
                                                  generation_, &challenges_, accessLog_));
    }
    for (auto& w : workers_) w->start();

    uv_loop_init(&loop_);
    poster_ = std::make_unique<net::Poster>(&loop_);
    watcher_ = std::make_unique<CertificateWatcher>(
        &loop_, [this] { return certificates_; },
        [this](std::shared_ptr<const certstore::Selector> next) { publish(std::move(next)); });
    // ACME hook: orders certificates for `tls: { acme: true }` sites; they
    // reach traffic through the store watcher, told of each issuance.
    acme_ = std::make_unique<acme::Manager>(&loop_, challenges_, [this](const std::string& name) {
      watcher_->storeEntryChanged(name);
    });
    acme_->configure(config);
    watcher_->watch(config.certificates);
    watcher_->watchStore(generation_->config);
    if (admin_ != nullptr) {
      adminApi_ = std::make_unique<AdminApi>(
          AdminApi::Hooks{[this] { return generation_->config; }, [this] { return certificates_; },
                          [this](const std::string& name, certstore::CredentialsPtr credentials) {
                            watcher_->applyValidated(name, std::move(credentials));
                          },
                          [] { return ::time(nullptr); }, [this] { return acme_->status(); },
                          [this](const std::string& site) { return acme_->renewNow(site); },
                          [this](const std::string& site, std::optional<int> reason) {
                            return acme_->revokeNow(site, reason);
                          },
                          [this](AdminApi::Work work, AdminApi::Reply done) {
                            net::offload<AdminResponse>(&loop_, std::move(work), std::move(done));
                          }});
      if (auto started = admin_->start(&loop_, adminApi_.get()); !started) {
        log::error(started.error().message);  // the daemon serves on without it
      } else {
        log::info("admin API on " + admin_->path());
      }
    }
    if (metricsServer_ != nullptr) {
      metrics_ = std::make_unique<MetricsEndpoint>(&loop_, poster_.get(), workers_,
                                                   [this](MetricsInput& in) { fillMetrics(in); });
      auto started = metricsServer_->start(
          &loop_, [this](const AdminRequest& request, AdminServer::Reply reply) {
            metrics_->handle(request, std::move(reply));
          });
      if (!started) {
        log::error(started.error().message);
        return 1;
      }
      log::info("metrics listening on " + metricsServer_->path());
    }
    upgrade_ = std::make_unique<Upgrade>(
        &loop_, [this](pid_t pid) { handOver(pid); },
        [](const std::string& why) { log::error("upgrade failed, serving on: " + why); });
    if (auto started = signals_.start(&loop_, [this](int signum) { onSignal(signum); }); !started) {
      log::error(started.error().message);
      return 1;
    }
    uv_timer_init(&loop_, &rotationTimer_);
    rotationTimer_.data = this;
    scheduleRotation(config.tls.ticketKeyRotation);
    log::info("ready: " + std::to_string(config.workers) + " worker(s), " +
              std::to_string(config.sites.size()) + " site(s), config " + config.sourceName);
    log::info("ready");
    if (metrics_ != nullptr) metrics_->setReady(true);
    // Started by an upgrade: the old process tells systemd (MAINPID=); a
    // READY=1 from here, not yet the main PID, would be refused.
    if (!Upgrade::signalReady()) {
      notifyServiceManager("READY=1\nSTATUS=ready, " + std::to_string(config.workers) +
                           " worker(s), " + std::to_string(config.sites.size()) + " site(s)");
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    for (auto& w : workers_) w->join();
    workers_.clear();
    uv_loop_close(&loop_);
    log::info("stopped");
    return 0;
  }

 private:
  void onSignal(int signum) {
    switch (signum) {
      case SIGHUP:
        reload();
        break;
      case SIGUSR2:
        startUpgrade();
        break;
      case SIGTERM:
      case SIGINT:
        stop(signum == SIGTERM ? "SIGTERM" : "SIGINT", false);
        break;
      default:
        log::info(std::string("ignoring signal ") + ::strsignal(signum));
    }
  }

  // SIGUSR2: the binary at argv[0] starts with our listening sockets and
  // the admin socket; handOver() once it is ready. The metrics address is
  // bound by the new process itself (SO_REUSEPORT: both serve it meanwhile).
  void startUpgrade() {
    if (stopping_) return;
    auto sockets = listeners_.handover();
    if (admin_ != nullptr && admin_->listeningFd() >= 0) {
      sockets.emplace_back(admin_->listeningFd(), "admin");
    }
    if (auto started = upgrade_->start(argv_, sockets); !started) {
      log::error("SIGUSR2: " + started.error().message);
      return;
    }
    log::info("SIGUSR2: upgrade: started " + argv_.front() + " with " +
              std::to_string(sockets.size()) + " socket(s); serving until it is ready");
  }

  // The new process is ready: it becomes systemd's main process, and we
  // drain. Idle keep-alive connections are not closed at once (see
  // Worker::drain), the admin socket file stays (the successor serves it).
  void handOver(pid_t pid) {
    log::info("upgrade: PID " + std::to_string(pid) + " is ready, handing over");
    notifyServiceManager("MAINPID=" + std::to_string(pid) + "\nSTATUS=handed over to PID " +
                         std::to_string(pid));
    stop("upgrade", true);
  }

  // `handover`: a successor serves on (no STOPPING=1, idle connections get
  // one more request, the admin socket file stays).
  void stop(const std::string& why, bool handover) {
    if (stopping_) return;
    stopping_ = true;
    if (!handover) {
      notifyServiceManager("STOPPING=1\nSTATUS=draining");
      if (upgrade_->running()) log::warning("stopping during an upgrade: stopping the new process");
    }
    upgrade_->cancel();
    if (metrics_ != nullptr) metrics_->setReady(false);  // draining
    auto timeout = generation_->config->shutdownTimeout.count();
    log::info(why + ": draining, in-flight requests have " + std::to_string(timeout) + " ms");
    // The metrics endpoint (/readyz: 503) and the poster stay open until
    // every worker has drained.
    auto drained =
        net::FanIn::start(*poster_, workers_.size(), [this](size_t) { finishStopping(); });
    for (auto& w : workers_) {
      w->drain(
          static_cast<uint64_t>(timeout), [drained] { drained->arrive(); }, !handover);
    }
    signals_.close();
    uv_close(reinterpret_cast<uv_handle_t*>(&rotationTimer_), nullptr);
    watcher_->close();
    if (admin_ != nullptr) admin_->close(!handover);
    acme_->close();  // ACME hook
  }

  // Every worker has drained: the last handles of the control loop close.
  void finishStopping() {
    if (metricsServer_ != nullptr) metricsServer_->close();
    if (metrics_ != nullptr) metrics_->close();
    poster_->close();  // reloads still being applied are not reported
  }

  // Routes, sites, upstreams and certificates change for new connections;
  // established ones finish under the generation they started with.
  // Listeners open and close (see listeners.h); connections accepted on a
  // closed one carry on. A config that fails validation, or a listener that
  // cannot be opened, changes nothing. `reloaded` is logged once every
  // worker has switched.
  void reload() {
    log::info("SIGHUP: reloading " + (configPath_.empty() ? "the embedded default" : configPath_));
    notifyServiceManager("RELOADING=1\n" + service::monotonicUsec() + "\nSTATUS=reloading");
    auto refuse = [this](const std::string& why) {
      log::error("reload refused, the running configuration stays:" + why);
      ++reloadsFailed_;
      notifyServiceManager("READY=1\nSTATUS=reload refused, the running configuration stays");
    };
    auto loaded = loadGeneration(configPath_);
    if (!loaded) return refuse("\n" + loaded.error().message);
    const GenerationPtr& gen = *loaded;
    auto plan = listeners_.prepare(*gen->config, static_cast<int>(workers_.size()));
    if (!plan) return refuse(" " + plan.error().message);
    // Last of the checks, as it acts: the log switches to the new file (or
    // reopens the same path, which is how rotation works).
    if (auto opened = accessLog_.open(gen->config->accessLog); !opened) {
      return refuse(" " + opened.error().message);
    }
    if (gen->config->workers != static_cast<int>(workers_.size())) {
      log::warning("reload: the number of workers changes at the next restart (running " +
                   std::to_string(workers_.size()) + ")");
    }
    generation_ = gen;
    ++reloadsSucceeded_;
    failedBeforeLastSuccess_ = reloadsFailed_;
    auto updates = listeners_.commit(std::move(*plan));
    auto applied = net::FanIn::start(*poster_, workers_.size(), [](size_t) {
      log::info("reloaded");
      notifyServiceManager("READY=1\nSTATUS=reloaded");
    });
    for (size_t w = 0; w < workers_.size(); ++w) {
      workers_[w]->reconfigure(generation_, std::move(updates[w]),
                               [applied] { applied->arrive(); });
    }
    // Certificates are published on their own (after the generation, in the
    // same queue): the reload rebuilt them from the files.
    publish(gen->selector);
    if (gen->config->adminSocket != (admin_ != nullptr ? admin_->path() : "")) {
      log::warning("reload: admin.socket changes at the next restart (running " +
                   (admin_ != nullptr ? admin_->path() : std::string("none")) + ")");
    }
    const std::string metricsNow = metricsServer_ != nullptr ? metricsServer_->path() : "none";
    if (gen->config->metricsListen.has_value() != (metricsServer_ != nullptr) ||
        (gen->config->metricsListen && metricsServer_ != nullptr &&
         gen->config->metricsListen->port != 0 &&
         gen->config->metricsListen->port != metricsServer_->port())) {
      log::warning("reload: metrics.listen changes at the next restart (running " + metricsNow +
                   ")");
    }
    auto challenges = challenges_.loadDirectory(gen->config->stateDir + "/acme/challenges");
    if (!challenges) log::warning(challenges.error().message);
    acme_->configure(*gen->config);  // ACME hook, before the store watcher
    watcher_->watch(gen->config->certificates);
    watcher_->watchStore(gen->config);
    // The keys stay; a new period restarts the schedule, a new number of
    // kept keys applies at the next rotation.
    if (gen->config->tls.ticketKeyRotation != rotationInterval_) {
      scheduleRotation(gen->config->tls.ticketKeyRotation);
    }
  }

  void scheduleRotation(conf::Duration interval) {
    rotationInterval_ = interval;
    const auto ms = static_cast<uint64_t>(interval.count());
    uv_timer_start(
        &rotationTimer_,
        [](uv_timer_t* t) noexcept { static_cast<ControlLoop*>(t->data)->rotateTicketKeys(); }, ms,
        ms);
  }

  // A new current key; the previous current one and up to
  // tls.ticket_keys_kept - 1 older ones still decrypt. Logged (never the key
  // bytes) once every worker uses the new ring.
  void rotateTicketKeys() {
    const conf::Tls& tls = generation_->config->tls;
    ticketKeys_ = ticketKeys_->rotated(static_cast<size_t>(tls.ticketKeysKept),
                                       ticketLifetime(tls.ticketKeyRotation, tls.ticketKeysKept));
    const uint64_t seq = ++rotations_;
    auto applied = net::FanIn::start(*poster_, workers_.size(), [this, seq](size_t) {
      log::debug("ticket keys rotated (" + std::to_string(seq) + "): 1 current, " +
                 std::to_string(ticketKeys_->size() - 1) + " previous");
    });
    for (auto& w : workers_) w->rotateTicketKeys(ticketKeys_, [applied] { applied->arrive(); });
  }

  // A new certificate snapshot for new handshakes on every worker.
  void publish(std::shared_ptr<const certstore::Selector> certificates) {
    certificates_ = std::move(certificates);
    ++storeGeneration_;
    for (auto& w : workers_) w->publishCertificates(certificates_);
  }

  // The control loop's part of a metrics scrape.
  void fillMetrics(MetricsInput& in) {
    in.swaps = watcher_->stats();
    in.reloadsSucceeded = reloadsSucceeded_;
    in.reloadsFailed = reloadsFailed_;
    in.lastReloadSucceeded = reloadsFailed_ == failedBeforeLastSuccess_;
    in.storeGeneration = storeGeneration_;
    in.acme = acmeMetrics(*acme_);
    in.served = certificates_;  // its states are counted off the loop, at the render
    in.renewalFailing = in.acme.renewalFailing();
  }

  std::string configPath_;
  GenerationPtr generation_;
  // What workers select certificates from: the generation's at start and
  // reload, then one-certificate updates and store rebuilds from the watcher.
  std::shared_ptr<const certstore::Selector> certificates_;
  uint64_t storeGeneration_ = 1;  // snapshots published; 1: the one loaded at start
  std::unique_ptr<CertificateWatcher> watcher_;
  std::unique_ptr<AdminServer> admin_;  // null: admin.socket is ""
  std::unique_ptr<AdminApi> adminApi_;
  std::unique_ptr<AdminServer> metricsServer_;  // null: metrics.listen is ""
  std::unique_ptr<MetricsEndpoint> metrics_;
  uint64_t reloadsSucceeded_ = 0;
  uint64_t reloadsFailed_ = 0;
  uint64_t failedBeforeLastSuccess_ = 0;  // reloadsFailed_ at the last applied reload
  acme::ChallengeStore challenges_;
  std::unique_ptr<acme::Manager> acme_;  // ACME hook (control loop)
  ListenerSet listeners_;
  AccessLogWriter accessLog_;  // outlives the workers, which write to it
  std::vector<std::unique_ptr<Worker>> workers_;
  net::SignalWatcher signals_;
  uv_loop_t loop_;
  std::unique_ptr<net::Poster> poster_;  // workers report back through it
  TicketKeyRingPtr ticketKeys_;          // current + previous, the same for every worker
  uv_timer_t rotationTimer_;
  conf::Duration rotationInterval_{};
  uint64_t rotations_ = 0;
  bool stopping_ = false;
  std::vector<std::string> argv_;                    // run again by an upgrade
  std::vector<service::InheritedSocket> inherited_;  // until run() hands them out
  std::unique_ptr<Upgrade> upgrade_;
};

}  // namespace

Result<GenerationPtr> loadGeneration(const std::string& path) {
  Result<conf::ConfigPtr> config =
      path.empty() ? conf::loadString(conf::kDefaultConfigYaml, "<embedded default>",
                                      std::filesystem::current_path().string())
                   : conf::loadFile(path);
  if (!config) return config.error();
  auto selector = certstore::Selector::build(**config, ::time(nullptr));
  if (!selector) return selector.error();
  auto upstreams = buildUpstreamSetups(**config);
  if (!upstreams) return upstreams.error();
  auto gen = std::make_shared<Generation>();
  gen->config = *config;
  gen->router = std::make_unique<Router>(*gen->config);
  gen->selector = *selector;
  gen->upstreams = std::move(*upstreams);
  return GenerationPtr(gen);
}

int runServer(const RunOptions& options) {
  // Before any thread exists (store loading starts some): every thread
  // inherits the mask, and the control loop reads the signals (SignalWatcher).
  net::blockControlSignals();
  ::signal(SIGPIPE, SIG_IGN);  // a peer gone mid-write is an error code, not death
  auto generation = loadGeneration(options.configPath);
  if (!generation) {
    log::error(generation.error().message);
    return 1;
  }
  // Taken before any thread starts, and before a failure can leave the
  // variables to a child.
  auto inherited = service::takeInheritedSockets();
  if (!inherited) {
    log::error(inherited.error().message);
    return 1;
  }
  ControlLoop control(options.configPath, *generation, options.argv, std::move(*inherited));
  return control.run();
}

}  // namespace tlsedge::proxy
