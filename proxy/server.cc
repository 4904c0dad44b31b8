#include "proxy/server.h"

#include <signal.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <vector>

#include "base/log.h"
#include "certstore/self_signed.h"
#include "net/loop.h"
#include "proxy/certificate_watcher.h"
#include "proxy/listeners.h"
#include "proxy/ticket_keys.h"
#include "proxy/worker.h"

namespace tlsedge::proxy {
namespace {

bool fileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The embedded default names a localhost certificate under its state
// directory; the demo must work on first start, so it is made here.
Status ensureDemoCertificate(const conf::Config& config) {
  const conf::CertificateFiles* files = config.findCertificate("localhost");
  if (files == nullptr || (fileExists(files->certPath) && fileExists(files->keyPath))) return Ok{};
  log::info("generating a self-signed certificate for localhost in " + files->certPath);
  return certstore::generateSelfSigned(files->certPath, files->keyPath,
                                       {"localhost", "127.0.0.1", "::1"}, 90);
}

class ControlLoop {
 public:
  ControlLoop(std::string configPath, GenerationPtr generation)
      : configPath_(std::move(configPath)),
        generation_(std::move(generation)),
        certificates_(generation_->selector) {}

  int run() {
    const conf::Config& config = *generation_->config;
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
    ticketKeys_ = TicketKeyRing::generate();
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
    watcher_->watch(config.certificates);
    watcher_->watchStore(generation_->config);
    for (int signum : {SIGTERM, SIGINT, SIGHUP}) {
      auto* h = new uv_signal_t;
      uv_signal_init(&loop_, h);
      h->data = this;
      uv_signal_start(h, &ControlLoop::onSignal, signum);
      signals_.push_back(h);
    }
    uv_timer_init(&loop_, &rotationTimer_);
    rotationTimer_.data = this;
    scheduleRotation(config.tls.ticketKeyRotation);
    log::info("ready: " + std::to_string(config.workers) + " worker(s), " +
              std::to_string(config.sites.size()) + " site(s), config " + config.sourceName);
    log::info("ready");
    uv_run(&loop_, UV_RUN_DEFAULT);
    for (auto& w : workers_) w->join();
    workers_.clear();
    uv_loop_close(&loop_);
    log::info("stopped");
    return 0;
  }

 private:
  static void onSignal(uv_signal_t* handle, int signum) noexcept {
    auto* self = static_cast<ControlLoop*>(handle->data);
    if (signum == SIGHUP) {
      self->reload();
    } else {
      self->stop(signum);
    }
  }

  void stop(int signum) {
    if (stopping_) return;
    stopping_ = true;
    auto timeout = generation_->config->shutdownTimeout.count();
    log::info(std::string(signum == SIGTERM ? "SIGTERM" : "SIGINT") +
              ": draining, in-flight requests have " + std::to_string(timeout) + " ms");
    for (auto& w : workers_) w->drain(static_cast<uint64_t>(timeout));
    for (auto* h : signals_) {
      uv_close(reinterpret_cast<uv_handle_t*>(h),
               [](uv_handle_t* x) { delete reinterpret_cast<uv_signal_t*>(x); });
    }
    signals_.clear();
    uv_close(reinterpret_cast<uv_handle_t*>(&rotationTimer_), nullptr);
    watcher_->close();
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
    auto loaded = loadGeneration(configPath_, false);
    if (!loaded) {
      log::error("reload refused, the running configuration stays:\n" + loaded.error().message);
      return;
    }
    const GenerationPtr& gen = *loaded;
    auto plan = listeners_.prepare(*gen->config, static_cast<int>(workers_.size()));
    if (!plan) {
      log::error("reload refused, the running configuration stays: " + plan.error().message);
      return;
    }
    // Last of the checks, as it acts: the log switches to the new file (or
    // reopens the same path, which is how rotation works).
    if (auto opened = accessLog_.open(gen->config->accessLog); !opened) {
      log::error("reload refused, the running configuration stays: " + opened.error().message);
      return;
    }
    if (gen->config->workers != static_cast<int>(workers_.size())) {
      log::warning("reload: the number of workers changes at the next restart (running " +
                   std::to_string(workers_.size()) + ")");
    }
    generation_ = gen;
    auto updates = listeners_.commit(std::move(*plan));
    const uint64_t seq = ++reloads_;
    pendingReloads_[seq] = workers_.size();
    for (size_t w = 0; w < workers_.size(); ++w) {
      workers_[w]->reconfigure(generation_, std::move(updates[w]), [this, seq] {
        poster_->post([this, seq] { workerReconfigured(seq); });  // back to the control loop
      });
    }
    // Certificates are published on their own (after the generation, in the
    // same queue): the reload rebuilt them from the files.
    publish(gen->selector);
    watcher_->watch(gen->config->certificates);
    watcher_->watchStore(gen->config);
    auto challenges = challenges_.loadDirectory(gen->config->stateDir + "/acme/challenges");
    if (!challenges) log::warning(challenges.error().message);
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
        [](uv_timer_t* t) { static_cast<ControlLoop*>(t->data)->rotateTicketKeys(); }, ms, ms);
  }

  // A new current key; the previous current one and up to
  // tls.ticket_keys_kept - 1 older ones still decrypt. Logged (never the key
  // bytes) once every worker uses the new ring.
  void rotateTicketKeys() {
    ticketKeys_ =
        ticketKeys_->rotated(static_cast<size_t>(generation_->config->tls.ticketKeysKept));
    const uint64_t seq = ++rotations_;
    pendingRotations_[seq] = workers_.size();
    for (auto& w : workers_) {
      w->rotateTicketKeys(ticketKeys_,
                          [this, seq] { poster_->post([this, seq] { workerRotated(seq); }); });
    }
  }

  void workerRotated(uint64_t seq) {
    auto it = pendingRotations_.find(seq);
    if (it == pendingRotations_.end() || --it->second > 0) return;
    pendingRotations_.erase(it);
    log::debug("ticket keys rotated (" + std::to_string(seq) + "): 1 current, " +
               std::to_string(ticketKeys_->size() - 1) + " previous");
  }

  // A new certificate snapshot for new handshakes on every worker.
  void publish(std::shared_ptr<const certstore::Selector> certificates) {
    certificates_ = std::move(certificates);
    for (auto& w : workers_) w->publishCertificates(certificates_);
  }

  void workerReconfigured(uint64_t seq) {
    auto it = pendingReloads_.find(seq);
    if (it == pendingReloads_.end() || --it->second > 0) return;
    pendingReloads_.erase(it);
    log::info("reloaded");
  }

  std::string configPath_;
  GenerationPtr generation_;
  // What workers select certificates from: the generation's at start and
  // reload, then one-certificate updates and store rebuilds from the watcher.
  std::shared_ptr<const certstore::Selector> certificates_;
  std::unique_ptr<CertificateWatcher> watcher_;
  acme::ChallengeStore challenges_;
  ListenerSet listeners_;
  AccessLogWriter accessLog_;  // outlives the workers, which write to it
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<uv_signal_t*> signals_;
  uv_loop_t loop_;
  std::unique_ptr<net::Poster> poster_;  // workers report back through it
  uint64_t reloads_ = 0;
  std::map<uint64_t, size_t> pendingReloads_;  // reload -> workers yet to apply it
  TicketKeyRingPtr ticketKeys_;                // current + previous, the same for every worker
  uv_timer_t rotationTimer_;
  conf::Duration rotationInterval_{};
  uint64_t rotations_ = 0;
  std::map<uint64_t, size_t> pendingRotations_;  // rotation -> workers yet to apply it
  bool stopping_ = false;
};

}  // namespace

Result<GenerationPtr> loadGeneration(const std::string& path, bool createDemoCertificate) {
  Result<conf::ConfigPtr> config =
      path.empty() ? conf::loadString(conf::kDefaultConfigYaml, "<embedded default>",
                                      std::filesystem::current_path().string())
                   : conf::loadFile(path);
  if (!config) return config.error();
  if (path.empty() && createDemoCertificate) {
    auto made = ensureDemoCertificate(**config);
    if (!made) return made.error();
  }
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
  ::signal(SIGPIPE, SIG_IGN);  // a peer gone mid-write is an error code, not death
  auto generation = loadGeneration(options.configPath, true);
  if (!generation) {
    log::error(generation.error().message);
    return 1;
  }
  ControlLoop control(options.configPath, *generation);
  return control.run();
}

}  // namespace tlsedge::proxy
