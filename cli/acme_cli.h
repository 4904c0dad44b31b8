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

namespace tlsedge::proxy {

// `args` are the words after "acme". Returns the exit status: 0 success,
// 1 failure, 2 usage error.
int runAcmeCommand(int argc, char** argv);

}  // namespace tlsedge::proxy
