// Helpers shared by the CLI subcommands that talk to the admin socket
// (`tlsedge cert`, `tlsedge acme`).
//
// Thread: the main thread of a CLI process.
#pragma once

#include <string>

#include "admin/admin_client.h"
#include "base/result.h"
#include "conf/config.h"

namespace tlsedge::cli {

// The configuration at `path`; without one, the embedded default's; with
// the sites the admin API keeps in its state directory (as the daemon
// loads it: admin::withStoredSites).
Result<conf::ConfigPtr> loadCliConfig(const std::string& path);

// For a URL path segment or query value: all but [A-Za-z0-9.*_-] escaped.
std::string percentEncode(const std::string& text);

// The message of an admin API error answer ({"error": "..."}), else
// "admin socket PATH: HTTP STATUS".
std::string adminReplyError(const admin::AdminReply& reply, const std::string& socket);

}  // namespace tlsedge::cli
