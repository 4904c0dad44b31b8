// Server: the control loop (main thread). Loads the configuration, builds
// generations, opens the listening sockets (or takes those passed in:
// systemd socket activation, an upgrade), runs the workers, and handles
// signals: SIGHUP reloads, SIGTERM/SIGINT drain and stop, SIGUSR2 upgrades
// (daemon/upgrade.h). systemd hears of each step (daemon/service_manager.h):
// READY=1 once listening with certificates loaded, RELOADING=1 and READY=1
// around a reload, STOPPING=1 when draining, MAINPID= at an upgrade.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "proxy/generation.h"

namespace tlsedge::daemon {

struct RunOptions {
  std::string configPath;         // empty: the embedded default configuration
  std::vector<std::string> argv;  // the command line, run again by an upgrade
};

// Runs until stopped by a signal. Returns the process exit code.
int runServer(const RunOptions& options);

// Loads a configuration the way `run` would (embedded default when `path` is
// empty; its demo site's certificate comes from the local CA, issued by the
// ACME manager once running) and builds the generation: every file is read
// and every certificate validated.
// The sites kept by the admin API in the state directory (admin/sites_api.h)
// are part of it, after the YAML ones; when they do not fit the YAML the
// load fails (`tlsedge check`, a single node's start and reload), except
// where `sitesRefused` is given in fleet mode (the daemon's start and
// reload: other nodes wrote them), where those that do not fit are left
// out (logged) and counted in `*sitesRefused`.
Result<proxy::GenerationPtr> loadGeneration(const std::string& path,
                                            size_t* sitesRefused = nullptr);

// `config` (`current`'s with other sites: admin/sites_api.h) as a generation:
// its router, its certificate snapshot (Selector::build, O(store)), and
// `current`'s upstream setups. Reads the certificates, not the config file.
Result<proxy::GenerationPtr> withConfig(const proxy::Generation& current, conf::ConfigPtr config);

}  // namespace tlsedge::daemon
