#include "cli/fleet_command.h"

#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>

#include "base/time.h"
#include "fleet/fleet_key.h"

namespace tlsedge::cli {
namespace {

// "k20261206": "k" and today's UTC date.
std::string defaultKeyId() {
  const std::string now = utc::format(std::time(nullptr));  // 2026-12-06T07:20:30Z
  return "k" + now.substr(0, 4) + now.substr(5, 2) + now.substr(8, 2);
}

}  // namespace

CLI::App* addFleetCommand(CLI::App& app, std::function<int()>* command) {
  CLI::App* fleetKey = app.add_subcommand(
      "fleet-key", "the fleet key that seals private keys in etcd\n(fleet mode, being built)");
  fleetKey->require_subcommand(0, 1);
  fleetKey->footer(
      "The key file (storage.etcd.key_file, mode 0600) holds one `ID KEY` line a\n"
      "key: the first seals, every one opens. To rotate, put the new line first\n"
      "and keep the old ones until everything is sealed again.");
  auto id = std::make_shared<std::string>();
  CLI::App* generate = fleetKey->add_subcommand(
      "new", "print a new key line (`ID BASE64`, 32 random\nbytes) on stdout");
  const CLI::Validator keyId(
      [](std::string& text) {
        Status valid = fleet::checkKeyId(text);
        return valid ? std::string() : valid.error().message;
      },
      "", "key id");
  generate->add_option("--id", *id, "the key's id (default: k and the UTC date,\nk20261206)")
      ->type_name("ID")
      ->check(keyId);
  generate->callback([id, command] {
    *command = [id] {
      std::cout << fleet::generateKeyLine(id->empty() ? defaultKeyId() : *id) << "\n";
      return 0;
    };
  });
  return fleetKey;
}

}  // namespace tlsedge::cli
