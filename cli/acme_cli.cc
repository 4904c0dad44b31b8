#include "cli/acme_cli.h"

#include <CLI/App.hpp>
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "acme/revocation.h"
#include "acme/status.h"
#include "admin/admin_client.h"
#include "certstore/json.h"
#include "cli/cli_common.h"
#include "fleet/open_storage.h"
#include "net/unix_socket.h"

namespace tlsedge::cli {
namespace {

// The help of `tlsedge acme` (its footer): which way a command goes.
constexpr const char* kAcmeFooter =
    "With --socket the command goes through the daemon there, or fails. Without\n"
    "it, `status` reads the store only when nothing listens on admin.socket (no\n"
    "socket file, or a stale one), saying so on stderr; any other connect error\n"
    "(e.g. permission denied) fails, naming the socket.\n"
    "Exit status: 0 on success, 1 when the operation failed, 2 on a usage error.";

// The parsed command line of one action.
struct AcmeArgs {
  std::string action;
  std::string site;           // renew, revoke
  std::optional<int> reason;  // revoke: the CRLReason code
  std::string configPath;
  std::string socket;
  bool json = false;
};

int fail(const std::string& message) {
  std::cerr << "tlsedge acme: " << message << "\n";
  return 1;
}

// Through the daemon, or (`status` only) on the store.
int runAcme(const AcmeArgs& a) {
  const std::string& action = a.action;
  const bool json = a.json;
  const std::string body =
      a.reason ? certstore::jsonText(nlohmann::ordered_json{{"reason", *a.reason}}) : "";
  std::string socket = a.socket;
  // An explicit --socket names a daemon: through it or not at all (as in
  // `tlsedge cert`, issue 15). Without it, only "nothing listens on
  // admin.socket" means no daemon; other connect errors are reported.
  const bool explicitSocket = !socket.empty();
  conf::ConfigPtr config;
  if (!explicitSocket) {
    auto loaded = loadCliConfig(a.configPath);
    if (!loaded.ok()) return fail(loaded.error().message);
    config = *loaded;
    socket = config->adminSocket;
  }
  net::SocketProbe probe;
  if (!socket.empty()) probe = net::probeUnixSocket(socket);
  if (probe.state == net::SocketProbe::State::kAnswers) {
    const bool post = action != "status";
    auto reply =
        admin::adminRequest(socket, post ? "POST" : "GET",
                            post ? "/v1/acme/" + percentEncode(a.site) + "/" + action : "/v1/acme",
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
  auto opened = fleet::openStorage(*config);
  if (!opened) return fail(opened.error().message);
  const auto sites = acme::storeStatuses(*config, opened->storage);
  if (json) {
    std::cout << acme::statusJson(sites) << "\n";
  } else {
    std::cout << acme::statusText(sites, ::time(nullptr));
  }
  return 0;
}

}  // namespace

CLI::App* addAcmeCommand(CLI::App& app, std::function<int()>* command) {
  CLI::App* acme = app.add_subcommand("acme",
                                      "the ACME sites: status, renew SITE, revoke SITE\n"
                                      "(renew and revoke through the running daemon)");
  acme->footer(kAcmeFooter);
  acme->require_subcommand(0, 1);
  auto args = std::make_shared<AcmeArgs>();
  auto action = [&](const std::string& name, const std::string& help) {
    CLI::App* sub = acme->add_subcommand(name, help);
    if (name != "status")
      sub->add_option("SITE", args->site, "a site of the configuration")->required()->type_name("");
    sub->add_option("-c,--config", args->configPath,
                    "the configuration (YAML); without it, the\nembedded default's")
        ->type_name("FILE");
    sub->add_option("--socket", args->socket,
                    "the admin socket (default: the configuration's\nadmin.socket)")
        ->type_name("PATH");
    sub->add_flag("--json", args->json, "print the result as one JSON value");
    sub->callback([args, command, name] {
      args->action = name;
      *command = [args] { return runAcme(*args); };
    });
    return sub;
  };
  action("status", "per ACME site: certificate, not-after, next\nrenewal, last error");
  action("renew", "order SITE's certificate now (needs the daemon)");
  CLI::App* revoke = action("revoke",
                            "revoke SITE's certificate at the CA and order a\n"
                            "new one at once (needs the daemon); the revoked\n"
                            "one serves until the new one arrives");
  // R by number or name, checked by acme::parseRevocationReason and
  // replaced by its number, which the request carries.
  const CLI::Validator reasonCode(
      [](std::string& reason) {
        auto code = acme::parseRevocationReason(reason);
        if (!code.ok()) return code.error().message;
        reason = std::to_string(*code);
        return std::string();
      },
      "", "reason");
  revoke
      ->add_option("--reason", args->reason,
                   "the CRLReason: 0..10 (not 7) or unspecified,\n"
                   "keyCompromise, affiliationChanged, superseded,\n"
                   "cessationOfOperation")
      ->type_name("R")
      ->transform(reasonCode);
  return acme;
}

}  // namespace tlsedge::cli
