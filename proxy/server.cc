#include "proxy/server.h"

#include <openssl/rand.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <memory>
#include <vector>

#include "base/log.h"
#include "certstore/self_signed.h"
#include "net/listener.h"
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

struct OpenedListener {
  bool tls;
  std::vector<int> fds;  // one per worker
};

// One SO_REUSEPORT socket per worker and address. Port 0 is resolved by the
// first socket so that every worker listens on the same port.
Result<std::vector<OpenedListener>> openListeners(const conf::Config& config, uint16_t* httpsPort) {
  std::vector<OpenedListener> out;
  auto closeAll = [&out] {
    for (auto& l : out) {
      for (int fd : l.fds) ::close(fd);
    }
  };
  *httpsPort = 443;
  bool firstHttps = true;
  for (bool tls : {true, false}) {
    for (const auto& addr : tls ? config.httpsListen : config.httpListen) {
      OpenedListener opened{tls, {}};
      uint16_t port = addr.port;
      for (int w = 0; w < config.workers; ++w) {
        auto fd = net::openListenSocket(addr.host, port, addr.ipv6, 511);
        if (!fd) {
          for (int f : opened.fds) ::close(f);
          closeAll();
          return fd.error();
        }
        opened.fds.push_back(*fd);
        if (port == 0) port = net::boundPort(*fd).ok() ? *net::boundPort(*fd) : 0;
      }
      log::info(std::string("listening ") + (tls ? "https " : "http ") +
                net::formatAddress(addr.host, port, addr.ipv6));
      if (tls && firstHttps) {
        *httpsPort = port;
        firstHttps = false;
      }
      out.push_back(std::move(opened));
    }
  }
  return out;
}

class ControlLoop {
 public:
  ControlLoop(std::string configPath, GenerationPtr generation)
      : configPath_(std::move(configPath)), generation_(std::move(generation)) {}

  int run() {
    const conf::Config& config = *generation_->config;
    uint16_t httpsPort = 443;
    auto listeners = openListeners(config, &httpsPort);
    if (!listeners) {
      log::error(listeners.error().message);
      return 1;
    }
    auto loaded = challenges_.loadDirectory(config.stateDir + "/acme/challenges");
    if (!loaded) log::warning(loaded.error().message);

    TicketKeys ticketKeys{};
    RAND_bytes(ticketKeys.data(), ticketKeys.size());
    for (int w = 0; w < config.workers; ++w) {
      std::vector<ListenSocket> sockets;
      for (const auto& l : *listeners) sockets.push_back({l.fds[static_cast<size_t>(w)], l.tls});
      workers_.push_back(std::make_unique<Worker>(w, std::move(sockets), httpsPort,
                                                  makeServerContext(config.tls, ticketKeys),
                                                  generation_, &challenges_));
    }
    for (auto& w : workers_) w->start();

    uv_loop_init(&loop_);
    for (int signum : {SIGTERM, SIGINT, SIGHUP}) {
      auto* h = new uv_signal_t;
      uv_signal_init(&loop_, h);
      h->data = this;
      uv_signal_start(h, &ControlLoop::onSignal, signum);
      signals_.push_back(h);
    }
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
  }

  // Routes, sites, upstreams and certificates change for new connections;
  // established ones finish under the generation they started with. A config
  // that fails validation changes nothing.
  void reload() {
    log::info("SIGHUP: reloading " + (configPath_.empty() ? "the embedded default" : configPath_));
    auto loaded = loadGeneration(configPath_, false);
    if (!loaded) {
      log::error("reload refused, the running configuration stays:\n" + loaded.error().message);
      return;
    }
    const GenerationPtr& gen = *loaded;
    const auto& old = *generation_->config;
    if (gen->config->workers != old.workers || !sameListeners(old, *gen->config)) {
      log::warning("reload: listener and worker changes take effect at the next restart");
    }
    generation_ = gen;
    for (auto& w : workers_) w->publish(generation_);
    auto challenges = challenges_.loadDirectory(gen->config->stateDir + "/acme/challenges");
    if (!challenges) log::warning(challenges.error().message);
    log::info("reloaded");
  }

  static bool sameListeners(const conf::Config& a, const conf::Config& b) {
    auto key = [](const std::vector<conf::SocketAddress>& v) {
      std::string k;
      for (const auto& x : v) k += x.text + ",";
      return k;
    };
    return key(a.httpsListen) == key(b.httpsListen) && key(a.httpListen) == key(b.httpListen);
  }

  std::string configPath_;
  GenerationPtr generation_;
  acme::ChallengeStore challenges_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<uv_signal_t*> signals_;
  uv_loop_t loop_;
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
