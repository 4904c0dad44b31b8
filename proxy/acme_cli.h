// `tlsedge acme status|renew|revoke`: through the running daemon's admin
// socket (GET /v1/acme, POST /v1/acme/SITE/renew, POST /v1/acme/SITE/revoke).
// Without a daemon, `status` reads the store of the configuration (-c FILE)
// and says the schedule is unknown; `renew` and `revoke` need the daemon.
//
// Thread: the main thread of a CLI process.
#pragma once

namespace tlsedge::proxy {

// `args` are the words after "acme". Returns the exit status: 0 success,
// 1 failure, 2 usage error.
int runAcmeCommand(int argc, char** argv);

}  // namespace tlsedge::proxy
