// `tlsedge fleet-key new [--id ID]`: prints a new line for the fleet key
// file (fleet/fleet_key.h: "ID BASE64", 32 random bytes) on stdout. The
// default id is "k" and today's UTC date (k20261206). Nothing is written to
// disk: the operator puts the line first in `storage.etcd.key_file` (mode
// 0600) on every node. `tlsedge fleet import` and `reseal`: fleet/import.h, fleet/reseal.h.
//
// Thread: the main thread of a CLI process.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace tlsedge::cli {

// Adds `fleet-key` and its action `new` to the command line `app`. When
// the command line names it, parsing sets `*command` to it (exit status 0);
// an id fleet::checkKeyId refuses is a usage error. Returns the `fleet-key`
// subcommand.
CLI::App* addFleetCommand(CLI::App& app, std::function<int()>* command);

// Adds `fleet import -c FILE [--from DIR] [--replace]` (fleet/import.h):
// copies a state directory's store into the configuration's etcd; and
// `fleet reseal -c FILE` (fleet/reseal.h): seals every sealed value again
// under the key file's first key. Returns the `fleet` subcommand.
CLI::App* addFleetStoreCommand(CLI::App& app, std::function<int()>* command);

}  // namespace tlsedge::cli
