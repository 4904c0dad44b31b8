// `tlsedge site list|show|put|rm`: sites managed at runtime, through the
// running daemon's admin socket (admin/sites_api.h). Unlike `tlsedge cert`
// there is no offline mode: a site is served by the daemon that checks it,
// so without a daemon answering on the socket the command fails.
//
// Thread: the main thread of a CLI process.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace tlsedge::cli {

// Adds `site` and its actions to `app` (as addCertCommand does); the
// command returns 0 on success, 1 when the operation failed.
CLI::App* addSiteCommand(CLI::App& app, std::function<int()>* command);

}  // namespace tlsedge::cli
