// Server: the control loop (main thread). Loads the configuration, builds
// generations, opens the listening sockets, runs the workers, and handles
// signals: SIGHUP reloads, SIGTERM/SIGINT drain and stop.
#pragma once

#include <string>

#include "base/result.h"
#include "proxy/generation.h"

namespace tlsedge::proxy {

struct RunOptions {
  std::string configPath;  // empty: the embedded default configuration
};

// Runs until stopped by a signal. Returns the process exit code.
int runServer(const RunOptions& options);

// Loads a configuration the way `run` would (embedded default when `path` is
// empty, generating its demo certificate if missing) and builds the
// generation: every file is read and every certificate validated.
Result<GenerationPtr> loadGeneration(const std::string& path, bool createDemoCertificate);

}  // namespace tlsedge::proxy
