// `tlsedge cert add|list|show|rm|which`: argument parsing; through the
// running daemon's admin socket (admin/admin_client.h) when one answers
// there, else over the operations in certstore/manage.h on the state
// directory of the configuration (-c FILE; default: the embedded default's).
// The state directory is used only with --offline, without an admin.socket,
// or when nothing listens on admin.socket (ENOENT, ECONNREFUSED; said on
// stderr); an explicit --socket that does not answer, or any other connect
// error, fails. The output is the same either way (admin/cert_text.h
// renders both).
//
// Thread: the main thread of a CLI process.
#pragma once

namespace tlsedge::proxy {

// `args` are the words after "cert". Returns the process exit status: 0 on
// success, 1 when the operation failed, 2 on a usage error.
int runCertCommand(int argc, char** argv);

}  // namespace tlsedge::proxy
