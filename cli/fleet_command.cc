#include "cli/fleet_command.h"

#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>

#include "base/time.h"
#include "cli/cli_common.h"
#include "fleet/etcd_storage.h"
#include "fleet/fleet_key.h"
#include "fleet/import.h"

namespace tlsedge::cli {
namespace {

// "k20261206": "k" and today's UTC date.
std::string defaultKeyId() {
  const std::string now = utc::format(std::time(nullptr));  // 2026-12-06T07:20:30Z
  return "k" + now.substr(0, 4) + now.substr(5, 2) + now.substr(8, 2);
}

struct ImportArgs {
  std::string config;
  std::string from;
  bool replace = false;
};

int runImport(const ImportArgs& a) {
  auto fail = [](const std::string& message) {
    std::cerr << "tlsedge fleet import: " << message << "\n";
    return 1;
  };
  auto config = loadCliConfig(a.config);
  if (!config) return fail(config.error().message);
  if (!(*config)->etcd) {
    return fail("the configuration has no `storage: { etcd: ... }`: no fleet to import into");
  }
  auto fleet = fleet::EtcdStorage::open(*(*config)->etcd);
  if (!fleet) return fail(fleet.error().message);
  const std::string from = a.from.empty() ? (*config)->stateDir : a.from;
  size_t said = 0;
  auto report = fleet::importStateDirectory(from, **fleet, a.replace, [&said](size_t done) {
    if (done >= said + 10000) {
      said = done;
      std::cerr << "tlsedge fleet import: " << done << " written\n";
    }
  });
  if (!report) return fail(report.error().message + " (what was written before stays)");
  std::cout << "imported " << report->entries << " certificate entries and " << report->values
            << " ACME values from " << from << " into " << (*fleet)->describe("") << "\n";
  if (!report->replaced.empty()) {
    std::cout << report->replaced.size() << " written over (--replace):";
    for (const std::string& key : report->replaced) std::cout << " " << key;
    std::cout << "\n";
  }
  if (!report->kept.empty()) {
    std::cout << report->kept.size() << " already in etcd, left as they are (--replace writes "
              << "over them):";
    for (const std::string& key : report->kept) std::cout << " " << key;
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

CLI::App* addFleetImportCommand(CLI::App& app, std::function<int()>* command) {
  CLI::App* fleet = app.add_subcommand("fleet", "fleet mode: moving a node's store into etcd");
  fleet->require_subcommand(0, 1);
  auto args = std::make_shared<ImportArgs>();
  CLI::App* import = fleet->add_subcommand(
      "import",
      "copy a state directory's certificates and ACME\nstate into the fleet's etcd (-c FILE's "
      "storage)");
  import->add_option("-c,--config", args->config, "the configuration with `storage: { etcd: ... }`")
      ->type_name("FILE")
      ->required();
  import
      ->add_option("--from", args->from,
                   "the state directory to copy (default: the\nconfiguration's state_dir)")
      ->type_name("DIR");
  import->add_flag("--replace", args->replace, "write over what etcd holds already");
  import->footer(
      "Entries etcd holds already are left as they are and listed. Run it\n"
      "before the node starts with `storage:` (a node makes its state\n"
      "directory match etcd's store).");
  import->callback([args, command] {
    *command = [args] { return runImport(*args);
};
}  // namespace tlsedge::cli
);
return fleet;
}

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
