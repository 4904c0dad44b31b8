// BoringSSL helpers shared by the TLS server and client sides.
#pragma once

#include <string>

namespace tlsedge::net {

// Empties BoringSSL's thread-local error queue into one line for a log
// message ("error:...:SSL routines:...; ..."), or "no detail" if empty.
// Call after a failed SSL call; call ERR_clear_error() before each one.
std::string drainSslErrors();

}  // namespace tlsedge::net
