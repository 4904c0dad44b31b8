#include "cli/acme_cli.h"

#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "acme/revocation.h"
#include "acme/status.h"
#include "admin/admin_client.h"
#include "cli/cli_common.h"
#include "net/unix_socket.h"

namespace tlsedge::proxy {
namespace {

constexpr const char* kAcmeUsage =
    "usage:\n"
    "  tlsedge acme status [OPTIONS]      per ACME site: certificate, not-after,\n"
    "                                     next renewal, last error\n"
    "  tlsedge acme renew SITE [OPTIONS]  order SITE's certificate now (needs the daemon)\n"
    "  tlsedge acme revoke SITE [--reason R] [OPTIONS]\n"
    "                                     revoke SITE's certificate at the CA and order a\n"
    "                                     new one at once (needs the daemon); the revoked\n"
    "                                     one serves until the new one arrives. R: 0..10\n"
    "                                     (not 7) or unspecified, keyCompromise,\n"
    "                                     affiliationChanged, superseded,\n"
    "                                     cessationOfOperation\n"
    "OPTIONS: -c FILE (the configuration; without it, the embedded default's),\n"
    "--socket PATH (the admin socket; default: the configuration's admin.socket),\n"
    "--json (print the result as one JSON value).\n"
    "With --socket the command goes through the daemon there, or fails. Without\n"
    "it, `status` reads the store only when nothing listens on admin.socket (no\n"
    "socket file, or a stale one), saying so on stderr; any other connect error\n"
    "(e.g. permission denied) fails, naming the socket.\n";

int fail(const std::string& message) {
  std::cerr << "tlsedge acme: " << message << "\n";
  return 1;
}

int usage(const std::string& message) {
  std::cerr << "tlsedge acme: " << message << "\n" << kAcmeUsage;
  return 2;
}

}  // namespace

int runAcmeCommand(int argc, char** argv) {
  if (argc < 1) return usage("missing action");
  const std::string action = argv[0];
  if (action == "help" || action == "--help" || action == "-h") {
    std::cout << kAcmeUsage;
    return 0;
  }
  std::string configPath, socket, reason;
  bool json = false;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-c" || arg == "--config" || arg == "--socket" || arg == "--reason") {
      if (i + 1 >= argc) return usage(arg + " needs a value");
      (arg == "--socket" ? socket : arg == "--reason" ? reason : configPath) = argv[++i];
    } else if (arg == "--json") {
      json = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return usage("unknown option '" + arg + "'");
    } else {
      positional.push_back(arg);
    }
  }
  if (action == "status" && !positional.empty()) return usage("status takes no arguments");
  if ((action == "renew" || action == "revoke") && positional.size() != 1) {
    return usage(action + ": needs exactly one SITE");
  }
  if (action != "status" && action != "renew" && action != "revoke") {
    return usage("unknown action '" + action + "'");
  }
  if (!reason.empty() && action != "revoke") return usage("--reason is for revoke only");
  std::string body;
  if (!reason.empty()) {
    auto code = acme::parseRevocationReason(reason);
    if (!code.ok()) return usage(code.error().message);
    body = "{\"reason\":" + std::to_string(*code) + "}";
  }

  // An explicit --socket names a daemon: through it or not at all (as in
  // `tlsedge cert`, issue 15). Without it, only "nothing listens on
  // admin.socket" means no daemon; other connect errors are reported.
  const bool explicitSocket = !socket.empty();
  conf::ConfigPtr config;
  if (!explicitSocket) {
    auto loaded = loadCliConfig(configPath);
    if (!loaded.ok()) return fail(loaded.error().message);
    config = *loaded;
    socket = config->adminSocket;
  }
  net::SocketProbe probe;
  if (!socket.empty()) probe = net::probeUnixSocket(socket);
  if (probe.state == net::SocketProbe::State::kAnswers) {
    const bool post = action != "status";
    auto reply =
        adminRequest(socket, post ? "POST" : "GET",
                     post ? "/v1/acme/" + percentEncode(positional[0]) + "/" + action : "/v1/acme",
                     body, json ? "application/json" : "text/plain");
    if (!reply.ok()) return fail(reply.error().message);
    if (reply->status >= 400) return fail(adminReplyError(*reply, socket));
    std::cout << reply->body << (json ? "\n" : "");
    return 0;
  }
  if (explicitSocket) {
    return fail(probe.message + "; with --socket the command goes through that daemon only");
  }
  if (!socket.empty() && probe.state == net::SocketProbe::State::kUnknown) {
    return fail(probe.message);
  }
  const std::string why = socket.empty() ? "no admin.socket is configured"
                                         : "no daemon answers on the admin socket " + socket;
  if (action != "status") return fail(action + " needs the running daemon: " + why);
  std::cerr << "tlsedge acme: " << why << "; reading the state directory " << config->stateDir
            << "\n";
  const auto sites = acme::storeStatuses(*config);
  if (json) {
    std::cout << acme::statusJson(sites) << "\n";
  } else {
    std::cout << acme::statusText(sites, ::time(nullptr));
  }
  return 0;
}

}  // namespace tlsedge::proxy
