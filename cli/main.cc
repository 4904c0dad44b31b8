// tlsedge: one binary, subcommands, one command line (CLI11): this file
// builds it (run, check, default-config, version, help; cert_cli.h,
// acme_cli.h and fleet_command.h add theirs), parses argv, then runs the
// command it names.
// Exit status: what the command returns (0 success, 1 failure); 2 on a
// usage error, said on stderr.
#include <CLI/CLI.hpp>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/version.h"
#include "cli/acme_cli.h"
#include "cli/cert_cli.h"
#include "cli/fleet_command.h"
#include "cli/site_cli.h"
#include "cli/token_cli.h"
#include "daemon/control_loop.h"

namespace {

constexpr const char* kSignals =
    "Signals (run): HUP reload, TERM/INT drain and stop, USR2 upgrade (start the\n"
    "binary at the same path, hand it the listening sockets, drain once it is ready).";

struct LogOptions {
  std::string level;   // "": info
  std::string format;  // "": syslog
};

// --log-level and --log-format: run's and check's.
void addLogOptions(CLI::App* command, LogOptions& log) {
  command->add_option("--log-level", log.level, "the least severe level written (default: info)")
      ->check(CLI::IsMember({"error", "warning", "notice", "info", "debug"}))
      ->type_name("LEVEL");
  command
      ->add_option("--log-format", log.format,
                   "syslog (default: \"<6>message\", for journald) or json\n"
                   "(one {\"time\",\"level\",\"message\"} object per line)")
      ->check(CLI::IsMember({"syslog", "json"}))
      ->type_name("FORMAT");
}

void applyLogOptions(const LogOptions& log) {
  tlsedge::log::Level level{};
  if (tlsedge::log::parseLevel(log.level, &level)) tlsedge::log::setMinLevel(level);
  if (log.format == "json") tlsedge::log::setFormat(tlsedge::log::Format::kJson);
}

// `tlsedge [cert|acme|fleet-key] help`, beside -h and --help: `parent`'s help.
void addHelpCommand(CLI::App* parent, const std::string& path, std::function<int()>* command) {
  parent->add_subcommand("help", "print this help")->callback([parent, path, command] {
    *command = [parent, path] {
      std::cout << parent->get_formatter()->make_help(parent, path, CLI::AppFormatMode::Normal);
      return 0;
    };
  });
}

// The innermost subcommand `app`'s command line named, and its path
// ("tlsedge cert add").
const CLI::App* innermost(const CLI::App& app, std::string* path) {
  const CLI::App* at = &app;
  *path = app.get_name();
  while (!at->get_subcommands().empty()) {
    at = at->get_subcommands().front();
    *path += " " + at->get_name();
  }
  return at;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("tlsedge: a TLS edge daemon (one binary: the daemon and its tools)", "tlsedge");
  app.get_formatter()->column_width(26);
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("tlsedge ") + tlsedge::version(),
                       "print the version and exit");
  std::function<int()> command;  // what the command line names: set by parsing
  auto setCommand = [&command](std::function<int()> run) {
    return [&command, run] { command = run; };
  };

  std::string config;
  LogOptions log;
  CLI::App* run =
      app.add_subcommand("run", "run the daemon (without -c: the embedded demo\nconfiguration)");
  run->add_option("-c,--config", config, "the configuration (YAML)")->type_name("FILE");
  addLogOptions(run, log);
  run->footer(kSignals);
  run->callback(setCommand([&config, argv, argc] {
    return tlsedge::daemon::runServer({config, std::vector<std::string>(argv, argv + argc)});
  }));

  CLI::App* check =
      app.add_subcommand("check", "validate a configuration and its certificates,\nthen exit");
  check->add_option("-c,--config", config, "the configuration (YAML)")
      ->type_name("FILE")
      ->required();
  addLogOptions(check, log);
  check->callback(setCommand([&config] {
    auto loaded = tlsedge::daemon::loadGeneration(config);
    if (!loaded) {
      std::cerr << loaded.error().message << "\n";
      return 1;
    }
    std::cout << config << ": ok\n";
    return 0;
  }));

  addHelpCommand(tlsedge::cli::addCertCommand(app, &command), "tlsedge cert", &command);
  addHelpCommand(tlsedge::cli::addAcmeCommand(app, &command), "tlsedge acme", &command);
  addHelpCommand(tlsedge::cli::addTokenCommand(app, &command), "tlsedge token", &command);
  addHelpCommand(tlsedge::cli::addSiteCommand(app, &command), "tlsedge site", &command);
  addHelpCommand(tlsedge::cli::addFleetCommand(app, &command), "tlsedge fleet-key", &command);
  addHelpCommand(tlsedge::cli::addFleetStoreCommand(app, &command), "tlsedge fleet", &command);

  app.add_subcommand("default-config", "print the embedded default configuration")
      ->callback(setCommand([] {
        std::cout << tlsedge::conf::kDefaultConfigYaml;
        return 0;
      }));
  app.add_subcommand("version", "print the version")->callback(setCommand([] {
    std::cout << "tlsedge " << tlsedge::version() << "\n";
    return 0;
  }));
  addHelpCommand(&app, "tlsedge", &command);
  // After the subcommands, which would inherit it.
  app.footer(std::string(kSignals) +
             "\n`tlsedge COMMAND --help`: a command's arguments and options.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(e);  // --help, --version
    }
    std::string path;
    innermost(app, &path);
    std::cerr << path << ": " << e.what() << "\n`" << path << " --help` for the usage\n";
    return 2;
  }
  if (!command) {  // `tlsedge`, `tlsedge cert`: a command is missing
    std::string path;
    const CLI::App* at = innermost(app, &path);
    std::cerr << path << ": a command is required\n"
              << at->get_formatter()->make_help(at, path, CLI::AppFormatMode::Normal);
    return 2;
  }
  applyLogOptions(log);
  return command();
}
