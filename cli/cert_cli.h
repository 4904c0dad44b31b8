// `tlsedge cert add|list|show|rm|which`: through the running daemon's admin
// socket (admin/admin_client.h) when one answers there, else over the
// operations in certstore/manage.h on the state directory of the
// configuration (-c FILE; default: the embedded default's).
// The state directory is used only with --offline, without an admin.socket,
// or when nothing listens on admin.socket (ENOENT, ECONNREFUSED; said on
// stderr); an explicit --socket that does not answer, or any other connect
// error, fails. The output is the same either way (admin/cert_text.h
// renders both).
//
// Thread: the main thread of a CLI process.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace tlsedge::cli {

// Adds `cert` and its actions (their arguments, options and help) to the
// command line `app`. When the command line names one of them, parsing sets
// `*command` to it; it returns the exit status: 0 on success, 1 when the
// operation failed. Returns the `cert` subcommand.
CLI::App* addCertCommand(CLI::App& app, std::function<int()>* command);

}  // namespace tlsedge::cli
