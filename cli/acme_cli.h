// `tlsedge acme status|renew|revoke`: through the running daemon's admin
// socket (GET /v1/acme, POST /v1/acme/SITE/renew, POST /v1/acme/SITE/revoke).
// When nothing listens on the configuration's admin.socket (ENOENT,
// ECONNREFUSED), `status` reads the store of the configuration (-c FILE)
// and says the schedule is unknown; `renew` and `revoke` need the daemon.
// An explicit --socket that does not answer, or any other connect error,
// fails with the reason.
//
// Thread: the main thread of a CLI process.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace tlsedge::cli {

// Adds `acme` and its actions to the command line `app`. When the command
// line names one of them, parsing sets `*command` to it; it returns the
// exit status: 0 on success, 1 on failure. Returns the `acme` subcommand.
CLI::App* addAcmeCommand(CLI::App& app, std::function<int()>* command);

}  // namespace tlsedge::cli
