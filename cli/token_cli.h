// `tlsedge token add|list|rm`: the API tokens of the HTTPS management API
// (admin/tokens.h), on the state directory of the configuration (-c FILE;
// default: the embedded default's). A running daemon sees a change at the
// token's next request; no daemon is needed.
//
// Thread: the main thread of a CLI process.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace tlsedge::cli {

// Adds `token` and its actions to `app`; parsing sets `*command` to the one
// named (exit status 0 on success, 1 on failure). Returns `token`.
CLI::App* addTokenCommand(CLI::App& app, std::function<int()>* command);

}  // namespace tlsedge::cli
