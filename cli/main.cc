// tlsedge: one binary, subcommands.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/version.h"
#include "cli/acme_cli.h"
#include "cli/cert_cli.h"
#include "daemon/control_loop.h"

namespace {

constexpr const char* kUsage =
    "usage: tlsedge <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [-c FILE]     run the daemon (without -c: the embedded demo configuration)\n"
    "  check -c FILE     validate a configuration and its certificates, then exit\n"
    "  cert add NAME --cert CHAIN.pem --key KEY.pem [--replace]\n"
    "                    validate a certificate and store it in the state directory\n"
    "  cert list         stored certificates: names, sites, expiry\n"
    "  cert show NAME    one certificate's details (never the key)\n"
    "  cert rm NAME      remove a certificate no site uses\n"
    "  cert which HOST   the certificate a handshake for HOST gets now\n"
    "                    (cert commands go through the running daemon's admin\n"
    "                    socket, else work on the state directory of -c FILE;\n"
    "                    `tlsedge cert help` for --socket, --offline, --json)\n"
    "  acme status       per ACME site: certificate, not-after, next renewal, last error\n"
    "  acme renew SITE   order SITE's certificate now (through the running daemon)\n"
    "  acme revoke SITE  revoke SITE's certificate and order a new one at once\n"
    "  default-config    print the embedded default configuration\n"
    "  version           print the version\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration file (YAML)\n"
    "  --log-level LEVEL   error | warning | notice | info (default) | debug\n"
    "  --log-format FORMAT syslog (default: \"<6>message\", for journald) | json\n"
    "                      (one {\"time\",\"level\",\"message\"} object per line)\n"
    "\n"
    "signals (run): HUP reload, TERM/INT drain and stop, USR2 upgrade (start the\n"
    "binary at the same path, hand it the listening sockets, drain once it is ready)\n";

struct Args {
  std::string command;
  std::string config;
  bool ok = true;
};

Args parse(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    a.ok = false;
    return a;
  }
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "tlsedge: " << arg << " needs a value\n";
        a.ok = false;
        return {};
      }
      return argv[++i];
    };
    if (arg == "-c" || arg == "--config") {
      a.config = value();
    } else if (arg == "--log-level") {
      std::string level = value();
      tlsedge::log::Level parsed{};
      if (tlsedge::log::parseLevel(level, &parsed)) {
        tlsedge::log::setMinLevel(parsed);
      } else {
        std::cerr << "tlsedge: unknown log level '" << level << "'\n";
        a.ok = false;
      }
    } else if (arg == "--log-format") {
      std::string format = value();
      if (format == "json") {
        tlsedge::log::setFormat(tlsedge::log::Format::kJson);
      } else if (format != "syslog") {
        std::cerr << "tlsedge: unknown log format '" << format << "' (syslog | json)\n";
        a.ok = false;
      }
    } else {
      std::cerr << "tlsedge: unknown argument '" << arg << "'\n";
      a.ok = false;
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "acme") == 0) {
    return tlsedge::proxy::runAcmeCommand(argc - 2, argv + 2);
  }
  if (argc >= 2 && std::strcmp(argv[1], "cert") == 0) {
    return tlsedge::proxy::runCertCommand(argc - 2, argv + 2);
  }
  Args args = parse(argc, argv);
  if (!args.ok) {
    std::cerr << kUsage;
    return 2;
  }
  if (args.command == "run") {
    return tlsedge::proxy::runServer({args.config, std::vector<std::string>(argv, argv + argc)});
  }
  if (args.command == "check") {
    if (args.config.empty()) {
      std::cerr << "tlsedge check: -c FILE is required\n" << kUsage;
      return 2;
    }
    auto loaded = tlsedge::proxy::loadGeneration(args.config);
    if (!loaded) {
      std::cerr << loaded.error().message << "\n";
      return 1;
    }
    std::cout << args.config << ": ok\n";
    return 0;
  }
  if (args.command == "default-config") {
    std::cout << tlsedge::conf::kDefaultConfigYaml;
    return 0;
  }
  if (args.command == "version" || args.command == "--version") {
    std::cout << "tlsedge " << tlsedge::version() << "\n";
    return 0;
  }
  if (args.command == "help" || args.command == "--help" || args.command == "-h") {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << "tlsedge: unknown command '" << args.command << "'\n" << kUsage;
  return 2;
}
