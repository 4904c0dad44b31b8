#include "daemon/control_loop.h"

#include <signal.h>

#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "acme/manager.h"
#include "admin/access.h"
#include "admin/admin_api.h"
#include "admin/admin_server.h"
#include "admin/management_tls.h"
#include "admin/sites_api.h"
#include "base/log.h"
#include "daemon/metrics_endpoint.h"
#include "daemon/service_manager.h"
#include "daemon/subsystems.h"
#include "daemon/upgrade.h"
#include "daemon/worker_set.h"
#include "net/loop.h"
#include "net/offload.h"
#include "net/signal_watcher.h"

namespace tlsedge::daemon {
namespace {

// Logs a failed notification (systemd waits for READY=1 until its timeout).
void notifyServiceManager(const std::string& state) {
  if (auto sent = service::notify(state); !sent) log::warning(sent.error().message);
}

// A site change built off the loop (admin/sites_api.h's Prepared): the
// generation, the store bindings of its certificate snapshot, and the
// snapshot count it was built at.
struct PreparedSites {
  proxy::GenerationPtr generation;
  std::shared_ptr<certstore::StoreBindings> bindings;  // moved out by applySites
  uint64_t certificatesPublished = 0;
};

class ControlLoop {
 public:
  // `sitesRefused`: the stored sites loadGeneration left out (fleet mode).
  ControlLoop(std::string configPath, proxy::GenerationPtr generation,
              std::vector<std::string> argv, std::vector<service::InheritedSocket> inherited,
              size_t sitesRefused)
      : configPath_(std::move(configPath)),
        generation_(std::move(generation)),
        argv_(std::move(argv)),
        inherited_(std::move(inherited)),
        sitesRefusedAtStart_(sitesRefused) {}

  int run() {
    const conf::Config& config = *generation_->config;
    // First, before any thread creates a file: bind() sets the umask around it.
    if (Status bound = bindControlSockets(config); !bound) return failed(bound);
    uv_loop_init(&loop_);
    poster_ = std::make_unique<net::Poster>(&loop_);
    if (Status started = startSubsystems(); !started) return failed(started);
    startSitesApi();
    // Counted; tried again at the next site or certificate change.
    sitesApi_->setStoredRefused(sitesRefusedAtStart_);
    startAdminApi();
    if (Status started = startMetrics(); !started) return failed(started);
    upgrade_ = std::make_unique<Upgrade>(
        &loop_, [this](pid_t pid) { handOver(pid); },
        [](const std::string& why) { log::error("upgrade failed, serving on: " + why); });
    if (auto started = signals_.start(&loop_, [this](int signum) { onSignal(signum); }); !started) {
      return failed(started);
    }
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
    workers_->join();
    uv_loop_close(&loop_);
    log::info("stopped");
    return 0;
  }

 private:
  static int failed(const Status& status) {
    log::error(status.error().message);
    return 1;
  }

  // The admin socket (bound, or passed in: socket activation, an upgrade,
  // as the inherited socket whose path is admin.socket) and the metrics
  // address. The other inherited sockets are the listeners'.
  Status bindControlSockets(const conf::Config& config) {
    int adminFd = -1;
    std::erase_if(inherited_, [&](const service::InheritedSocket& s) {
      if (adminFd >= 0 || s.family != AF_UNIX || !s.stream || config.adminSocket.empty() ||
          s.address != config.adminSocket) {
        return false;
      }
      adminFd = s.fd;
      return true;
    });
    if (adminFd >= 0 || !config.adminSocket.empty()) {
      auto admin = adminFd >= 0 ? admin::AdminServer::adopt(adminFd, config.adminSocket)
                                : admin::AdminServer::bind(config.adminSocket);
      if (!admin) return admin.error();
      admin_ = std::move(*admin);
    }
    if (config.management) {
      auto tls = admin::managementTlsContext(*config.management);
      if (!tls) return tls.error();
      auto bound = admin::AdminServer::bindTls(config.management->listen, "admin", std::move(*tls));
      if (!bound) return bound.error();
      management_ = std::move(*bound);
    }
    if (config.metricsListen) {
      auto bound = admin::AdminServer::bindTcp(*config.metricsListen, "metrics");
      if (!bound) return bound.error();
      metricsServer_ = std::move(*bound);
    }
    return Ok{};
  }

  // The subsystems, started in dependency order; `subsystems_` is the
  // order a reload prepares and commits them in (daemon/subsystems.h).
  Status startSubsystems() {
    const conf::Config& config = *generation_->config;
    // Each commit's continuation, once every worker switched: the fan-ins
    // complete in commit order (each worker takes its posts in order).
    workers_ = std::make_unique<WorkerSet>(poster_.get(), [this] {
      auto then = std::move(switched_.front());
      switched_.pop_front();
      then();
    });
    workers_->offerInherited(std::move(inherited_));
    if (Status opened = workers_->prepare(*generation_); !opened) return opened;
    if (Status opened = accessLog_.start(config); !opened) return opened;
    tickets_ = std::make_unique<TicketKeys>(&loop_, *workers_, config.tls);
    certificates_ = std::make_unique<CertificateFeed>(&loop_, *workers_, generation_->selector);
    // In fleet mode the replicas write the fleet's entries into the state
    // directory, each whole; the store watcher applies the certificates at
    // once, the sites API the sites (both on this loop, after the start).
    if (Status opened = storage_.start(
            &loop_, config,
            [this](const std::string& name) {
              certificates_->watcher().storeEntryChanged(name, /*written=*/true);
              sitesApi_->certificatesChanged();
            },
            [this](const std::string&) { sitesApi_->storedChanged(); });
        !opened) {
      return opened;
    }
    // ACME hook: orders certificates for `tls: { acme: true }` sites; they
    // reach traffic through the store watcher, told of each issuance.
    acme_ = std::make_unique<AcmeOrders>(&loop_, storage_, [this](const std::string& name) {
      certificates_->watcher().storeEntryChanged(name);
    });
    if (Status started = acme_->start(config); !started)
      return started;  // before the store watcher
    workers_->start(generation_, tickets_->ring(), &acme_->challenges(), accessLog_.writer());
    certificates_->start(generation_->config);
    tickets_->start(storage_.fleet());
    std::optional<std::pair<std::string, uint16_t>> metrics;
    if (metricsServer_ != nullptr) metrics.emplace(metricsServer_->path(), metricsServer_->port());
    fixed_ = std::make_unique<FixedAtStart>(admin_ != nullptr ? admin_->path() : "", metrics,
                                            config.etcd, config.management);
    subsystems_ = {workers_.get(),      &accessLog_,    &storage_,   acme_.get(),
                   certificates_.get(), tickets_.get(), fixed_.get()};
    return Ok{};
  }

  // Sites managed at runtime: through the admin API, and from the fleet.
  void startSitesApi() {
    sitesApi_ = std::make_unique<admin::SitesApi>(admin::SitesApi::Hooks{
        [this] { return generation_->config; },
        [this] {
          // Run on a pool thread, over the generation running now (held).
          return [current = generation_, published = certificates_->generation()](
                     conf::ConfigPtr next) -> Result<admin::SitesApi::Prepared> {
            auto built = withConfig(*current, std::move(next));
            if (!built) return Error{built.error().message, ErrorKind::kInvalid};
            auto bindings = std::make_shared<certstore::StoreBindings>(
                certstore::StoreBindings::build((*built)->config, *(*built)->selector));
            return admin::SitesApi::Prepared(std::make_shared<const PreparedSites>(
                PreparedSites{*built, std::move(bindings), published}));
          };
        },
        [this](admin::SitesApi::Prepared prepared, std::function<void(Status)> done) {
          applySites(std::move(prepared), std::move(done));
        },
        [this](admin::AdminApi::Work work, admin::AdminApi::Reply done) {
          net::offload<admin::AdminResponse>(&loop_, std::move(work), std::move(done));
        },
        // Where changes are kept: the state directory, or the fleet's etcd.
        [this] { return storage_.current(); }});
  }

  void startAdminApi() {
    if (admin_ == nullptr && management_ == nullptr) return;
    const conf::Config& config = *generation_->config;
    acme::Manager& acme = acme_->manager();
    adminApi_ = std::make_unique<admin::AdminApi>(admin::AdminApi::Hooks{
        [this] { return generation_->config; }, [this] { return certificates_->current(); },
        [this](const std::string& name, certstore::CredentialsPtr credentials) {
          certificates_->watcher().applyValidated(name, std::move(credentials));
        },
        [] { return ::time(nullptr); }, [&acme] { return acme.status(); },
        [&acme](const std::string& site) { return acme.renewNow(site); },
        [&acme](const std::string& site, std::optional<int> reason) {
          return acme.revokeNow(site, reason);
        },
        [this](admin::AdminApi::Work work, admin::AdminApi::Reply done) {
          net::offload<admin::AdminResponse>(&loop_, std::move(work), std::move(done));
        },
        [this] { return storage_.current(); },
        [this](const admin::AdminRequest& request, admin::AdminApi::Reply reply) {
          sitesApi_->handle(request, std::move(reply));
        }});
    audit_ = std::make_unique<admin::AuditLog>(config.auditLog);
    auto nowMs = [this] { return uv_now(&loop_); };
    if (admin_ != nullptr) {
      auto handler = admin::guardedHandler(nullptr, adminApi_.get(), audit_.get(), nowMs);
      if (auto started = admin_->start(&loop_, std::move(handler)); !started) {
        log::error(started.error().message);  // the daemon serves on without it
      } else {
        log::info("admin API on " + admin_->path());
      }
    }
    if (management_ != nullptr) {
      access_ = std::make_unique<admin::Access>(admin::tokensPath(config.stateDir),
                                                config.management->clients);
      auto handler = admin::guardedHandler(access_.get(), adminApi_.get(), audit_.get(), nowMs);
      if (auto started = management_->start(&loop_, std::move(handler)); !started) {
        log::error(started.error().message);
      } else {
        log::info("management API listening on " + management_->path());
      }
    }
  }

  Status startMetrics() {
    if (metricsServer_ == nullptr) return Ok{};
    metrics_ = std::make_unique<MetricsEndpoint>(&loop_, poster_.get(), workers_->workers(),
                                                 [this](MetricsInput& in) { fillMetrics(in); });
    metrics_->setNotReady(
        [this] { return storage_.notReady(certificates_->watcher().storePending()); });
    auto started = metricsServer_->start(
        &loop_, [this](const admin::AdminRequest& request, admin::AdminServer::Reply reply) {
          metrics_->handle(request, std::move(reply));
        });
    if (!started) return started;
    log::info("metrics listening on " + metricsServer_->path());
    return Ok{};
  }

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
    auto sockets = workers_->handover();
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
    workers_->drain(static_cast<uint64_t>(timeout), handover, [this] { finishStopping(); });
    signals_.close();
    tickets_->close();
    certificates_->watcher().close();
    if (admin_ != nullptr) admin_->close(!handover);
    if (management_ != nullptr) management_->close();
    acme_->close();  // ACME hook
    storage_.close();
  }

  // Every worker has drained: the last handles of the control loop close.
  void finishStopping() {
    if (metricsServer_ != nullptr) metricsServer_->close();
    if (metrics_ != nullptr) metrics_->close();
    poster_->close();  // reloads still being applied are not reported
  }

  // Every subsystem prepares (a config that fails validation, a listener
  // that cannot be opened, an access log that cannot be: nothing changes),
  // then every one commits: routes, sites, upstreams and certificates
  // change for new connections; established ones finish under the
  // generation they started with. `reloaded` is logged once every worker
  // has switched.
  void reload() {
    log::info("SIGHUP: reloading " + (configPath_.empty() ? "the embedded default" : configPath_));
    notifyServiceManager("RELOADING=1\n" + service::monotonicUsec() + "\nSTATUS=reloading");
    auto refuse = [this](const std::string& why) {
      log::error("reload refused, the running configuration stays:" + why);
      ++reloadsFailed_;
      notifyServiceManager("READY=1\nSTATUS=reload refused, the running configuration stays");
    };
    size_t sitesRefused = 0;
    auto loaded = loadGeneration(configPath_, &sitesRefused);
    if (!loaded) return refuse("\n" + loaded.error().message);
    switched_.push_back([this, old = generation_]() mutable {
      retire(std::move(old));
      log::info("reloaded");
      notifyServiceManager("READY=1\nSTATUS=reloaded");
    });
    if (Status applied = reconfigure(subsystems_, *loaded); !applied) {
      switched_.pop_back();
      return refuse(" " + applied.error().message);
    }
    generation_ = *loaded;
    sitesApi_->setStoredRefused(sitesRefused);
    ++reloadsSucceeded_;
    failedBeforeLastSuccess_ = reloadsFailed_;
  }

  // A site change of the admin API (admin/sites_api.h): `prepared` (a
  // generation withConfig built) goes through the subsystems as a reload's
  // does, without reading the configuration file again.
  // `done` once every worker serves it.
  void applySites(admin::SitesApi::Prepared prepared, std::function<void(Status)> done) {
    auto sites = std::static_pointer_cast<const PreparedSites>(std::move(prepared));
    // Its certificate snapshot was read from the store before a hot swap
    // (an upload, an ACME issuance) that it may not hold: built again.
    if (sites->certificatesPublished != certificates_->generation()) {
      return done(
          Error{"the certificates changed while the site change was built", ErrorKind::kConflict});
    }
    proxy::GenerationPtr next = sites->generation;
    certificates_->offerBindings(
        std::make_unique<certstore::StoreBindings>(std::move(*sites->bindings)),
        next->selector.get());
    switched_.push_back([this, done, old = generation_]() mutable {
      retire(std::move(old));
      done(Ok{});
    });
    if (Status applied = reconfigure(subsystems_, next); !applied) {
      switched_.pop_back();
      certificates_->offerBindings(nullptr, nullptr);
      return done(applied);
    }
    generation_ = std::move(next);
  }

  // A generation every worker has left: released on the pool, as its last
  // reference usually is this one (O(config): 100k sites' router, hosts
  // and store bindings would hold the control loop; docs/sites.md). A
  // connection still under it keeps it alive on its worker.
  void retire(proxy::GenerationPtr old) {
    net::offload<int>(
        &loop_,
        [old = std::move(old)]() mutable {
          old.reset();
          return 0;
        },
        [](int) {});
  }

  // The control loop's part of a metrics scrape.
  void fillMetrics(MetricsInput& in) {
    in.swaps = certificates_->watcher().stats();
    in.reloadsSucceeded = reloadsSucceeded_;
    in.reloadsFailed = reloadsFailed_;
    in.lastReloadSucceeded = reloadsFailed_ == failedBeforeLastSuccess_;
    in.storeGeneration = certificates_->generation();
    if (access_ != nullptr) in.adminRefused = access_->counters();
    in.acme = acmeMetrics(acme_->manager());
    if (storage_.replica() != nullptr) {
      in.fleet = storage_.replica()->stats();
      in.fleetSites = storage_.sitesReplica()->stats();
      in.fleetSitesRefused = sitesApi_->storedRefused();
      in.etcdRequests = storage_.fleet()->client().requests();
      in.etcdWatchStreams =
          storage_.replica()->watchStreams() + storage_.sitesReplica()->watchStreams();
      if (acme_->fleet() != nullptr) in.etcdWatchStreams += acme_->fleet()->watchStreams();
    }
    in.served = certificates_->current();  // its states are counted off the loop, at the render
    in.renewalFailing = in.acme.renewalFailing();
  }

  std::string configPath_;
  proxy::GenerationPtr generation_;
  uv_loop_t loop_;
  std::unique_ptr<net::Poster> poster_;  // workers report back through it
  // The subsystems (daemon/subsystems.h); the access log outlives the
  // workers, which write to it.
  AccessLogFile accessLog_;
  StorageChoice storage_;
  std::unique_ptr<WorkerSet> workers_;
  std::unique_ptr<TicketKeys> tickets_;
  std::unique_ptr<CertificateFeed> certificates_;
  std::unique_ptr<AcmeOrders> acme_;  // ACME hook (control loop)
  std::unique_ptr<FixedAtStart> fixed_;
  std::vector<Subsystem*> subsystems_;          // in reload order
  std::deque<std::function<void()>> switched_;  // per commit under way, in order
  std::unique_ptr<admin::AdminServer> admin_;   // null: admin.socket is ""
  std::unique_ptr<admin::AdminApi> adminApi_;
  std::unique_ptr<admin::AdminServer> management_;  // null: no admin.listen
  std::unique_ptr<admin::Access> access_;           // management_'s
  std::unique_ptr<admin::AuditLog> audit_;
  std::unique_ptr<admin::SitesApi> sitesApi_;          // /v1/sites, through adminApi_
  std::unique_ptr<admin::AdminServer> metricsServer_;  // null: metrics.listen is ""
  std::unique_ptr<MetricsEndpoint> metrics_;
  uint64_t reloadsSucceeded_ = 0;
  uint64_t reloadsFailed_ = 0;
  uint64_t failedBeforeLastSuccess_ = 0;  // reloadsFailed_ at the last applied reload
  net::SignalWatcher signals_;
  bool stopping_ = false;
  std::vector<std::string> argv_;                    // run again by an upgrade
  std::vector<service::InheritedSocket> inherited_;  // until run() hands them out
  std::unique_ptr<Upgrade> upgrade_;
  size_t sitesRefusedAtStart_;
};

}  // namespace

Result<proxy::GenerationPtr> withConfig(const proxy::Generation& current, conf::ConfigPtr config) {
  // O(store): every certificate read again, every site host bound again
  // (binding.h decides per configuration); docs/benchmarks.md has the cost.
  auto selector = certstore::Selector::build(*config, ::time(nullptr));
  if (!selector) return selector.error();
  auto gen = std::make_shared<proxy::Generation>();
  gen->config = std::move(config);
  gen->router = std::make_unique<proxy::Router>(*gen->config);
  gen->selector = *selector;
  // The upstreams are those of `current` (a site change names existing
  // ones): their setups (TLS contexts, per-worker state keys) carry over,
  // pointing into the new Config.
  gen->upstreams = current.upstreams;
  for (const conf::Upstream& upstream : gen->config->upstreams) {
    if (auto it = gen->upstreams.find(upstream.name); it != gen->upstreams.end()) {
      it->second.config = &upstream;
    }
  }
  return proxy::GenerationPtr(gen);
}

namespace {

// `config` as a generation: every certificate read and validated.
Result<proxy::GenerationPtr> buildGeneration(conf::ConfigPtr config) {
  auto selector = certstore::Selector::build(*config, ::time(nullptr));
  if (!selector) return selector.error();
  auto upstreams = proxy::buildUpstreamSetups(*config);
  if (!upstreams) return upstreams.error();
  auto gen = std::make_shared<proxy::Generation>();
  gen->config = std::move(config);
  gen->router = std::make_unique<proxy::Router>(*gen->config);
  gen->selector = *selector;
  gen->upstreams = std::move(*upstreams);
  return proxy::GenerationPtr(gen);
}

}  // namespace

Result<proxy::GenerationPtr> loadGeneration(const std::string& path, size_t* sitesRefused) {
  Result<conf::ConfigPtr> yaml =
      path.empty() ? conf::loadString(conf::kDefaultConfigYaml, "<embedded default>",
                                      std::filesystem::current_path().string())
                   : conf::loadFile(path);
  if (!yaml) return yaml.error();
  if (sitesRefused == nullptr || !(*yaml)->etcd) {
    // The sites the admin API created, kept in the state directory, follow.
    auto config = admin::withStoredSites(*yaml);
    if (!config) return config.error();
    return buildGeneration(*config);
  }
  // Fleet mode: the stored sites are the fleet's, written through other
  // nodes; those that do not fit this node's YAML are left out, not the
  // node kept down (admin/sites_api.h).
  const std::string where = (*yaml)->stateDir + "/" + conf::kApiSitesKey;
  auto fit = admin::fittingStoredSites(**yaml);
  if (!fit) return fit.error();
  const size_t stored = fit->sites.size() + fit->refused;
  *sitesRefused = fit->refused;
  if (fit->refused > 0) {
    log::error("sites: " + std::to_string(fit->refused) + " of those " + where +
               " holds are not served (the others are): " + fit->problems);
  }
  auto built = buildGeneration(conf::withApiSites(**yaml, std::move(fit->sites)));
  if (built || stored == 0) return built;
  auto plain = buildGeneration(*yaml);
  if (!plain) return plain.error();
  log::error("sites: those " + where + " holds are not served: " + built.error().message +
             "; serving the configuration's sites only until they fit");
  *sitesRefused = stored;
  return plain;
}

int runServer(const RunOptions& options) {
  // Before any thread exists (store loading starts some): every thread
  // inherits the mask, and the control loop reads the signals (SignalWatcher).
  net::blockControlSignals();
  ::signal(SIGPIPE, SIG_IGN);  // a peer gone mid-write is an error code, not death
  size_t sitesRefused = 0;
  auto generation = loadGeneration(options.configPath, &sitesRefused);
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
  ControlLoop control(options.configPath, *generation, options.argv, std::move(*inherited),
                      sitesRefused);
  return control.run();
}

}  // namespace tlsedge::daemon
