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
#include "fleet/reseal.h"

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

int fail(const std::string& action, const std::string& message) {
  std::cerr << "tlsedge fleet " << action << ": " << message << "\n";
  return 1;
}

// The configuration at `path` and the fleet's storage it names.
Result<std::pair<conf::ConfigPtr, std::shared_ptr<fleet::EtcdStorage>>> openFleet(
    const std::string& path) {
  auto config = loadCliConfig(path);
  if (!config) return config.error();
  if (!(*config)->etcd) {
    return makeError(path + ": the configuration has no `storage: { etcd: ... }`: no fleet");
  }
  auto fleet = fleet::EtcdStorage::open(*(*config)->etcd);
  if (!fleet) return fleet.error();
  return std::make_pair(*config, *fleet);
}

// "N WHAT: KEY KEY ...", when there are any.
void printKeys(const std::vector<std::string>& keys, const std::string& what) {
  if (keys.empty()) return;
  std::cout << keys.size() << " " << what << ":";
  for (const std::string& key : keys) std::cout << " " << key;
  std::cout << "\n";
}

int runReseal(const std::string& configPath) {
  auto opened = openFleet(configPath);
  if (!opened) return fail("reseal", opened.error().message);
  const auto& fleet = opened->second;
  auto report = fleet::resealFleet(*fleet);
  if (!report) {
    return fail("reseal", report.error().message + " (what was sealed again before stays)");
  }
  std::cout << "sealed " << report->resealed << " values again under fleet key '"
            << fleet->fleetKey().sealingId() << "' (" << report->current << " already were) in "
            << fleet->describe("") << "\n";
  printKeys(report->moved, "changed meanwhile, left as their writer sealed them (run it again)");
  return 0;
}

int runImport(const ImportArgs& a) {
  auto opened = openFleet(a.config);
  if (!opened) return fail("import", opened.error().message);
  const auto& [config, fleet] = *opened;
  const std::string from = a.from.empty() ? config->stateDir : a.from;
  size_t said = 0;
  auto report = fleet::importStateDirectory(from, *fleet, a.replace, [&said](size_t done) {
    if (done >= said + 10000) {
      said = done;
      std::cerr << "tlsedge fleet import: " << done << " written\n";
    }
  });
  if (!report) return fail("import", report.error().message + " (what was written before stays)");
  std::cout << "imported " << report->entries << " certificate entries, " << report->sites
            << " sites and " << report->values << " ACME values from " << from << " into "
            << fleet->describe("") << "\n";
  printKeys(report->replaced, "written over (--replace)");
  printKeys(report->kept, "already in etcd, left as they are (--replace writes over them)");
  return 0;
}

}  // namespace

CLI::App* addFleetStoreCommand(CLI::App& app, std::function<int()>* command) {
  CLI::App* fleet = app.add_subcommand(
      "fleet", "fleet mode: a node's store moved into etcd, the\nfleet key rotated");
  fleet->require_subcommand(0, 1);
  auto args = std::make_shared<ImportArgs>();
  CLI::App* importer = fleet->add_subcommand(
      "import",
      "copy a state directory's certificates and ACME\nstate into the fleet's etcd (-c FILE's "
      "storage)");
  importer
      ->add_option("-c,--config", args->config, "the configuration with `storage: { etcd: ... }`")
      ->type_name("FILE")
      ->required();
  importer
      ->add_option("--from", args->from,
                   "the state directory to copy (default: the\nconfiguration's state_dir)")
      ->type_name("DIR");
  importer->add_flag("--replace", args->replace, "write over what etcd holds already");
  importer->footer(
      "Entries etcd holds already are left as they are and listed. Run it\n"
      "before the node starts with `storage:` (a node makes its state\n"
      "directory match etcd's store).");
  importer->callback([args, command] { *command = [args] { return runImport(*args); }; });
  auto resealConfig = std::make_shared<std::string>();
  CLI::App* reseal = fleet->add_subcommand(
      "reseal", "seal every sealed value in etcd again under\nthe key file's first key");
  reseal
      ->add_option("-c,--config", *resealConfig, "the configuration with `storage: { etcd: ... }`")
      ->type_name("FILE")
      ->required();
  reseal->footer(
      "The fleet key's rotation: put the new key first in the key file on every\n"
      "node, restart them, run this once, then drop the old line.");
  reseal->callback(
      [resealConfig, command] { *command = [resealConfig] { return runReseal(*resealConfig); }; });
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
