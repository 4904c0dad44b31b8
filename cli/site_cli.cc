#include "cli/site_cli.h"

#include <CLI/App.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include "admin/admin_client.h"
#include "cli/cli_common.h"
#include "net/unix_socket.h"

namespace tlsedge::cli {
namespace {

constexpr const char* kSiteFooter =
    "Sites of the configuration file are listed and shown, never changed here.\n"
    "`put` creates or replaces a site from a file: JSON (or YAML) with the keys\n"
    "of a `sites:` entry (`name` may be left out); `show` prints one in that\n"
    "form. The daemon must be running (no offline mode).\n"
    "Exit status: 0 on success, 1 when the operation failed, 2 on a usage error.";

struct SiteArgs {
  std::string action;
  std::string name;  // show, put, rm
  std::string file;  // put
  std::string configPath;
  std::string socket;
  bool json = false;
};

int fail(const std::string& message) {
  std::cerr << "tlsedge site: " << message << "\n";
  return 1;
}

int runSite(const SiteArgs& a) {
  std::string socket = a.socket;
  if (socket.empty()) {
    auto loaded = loadCliConfig(a.configPath);
    if (!loaded.ok()) return fail(loaded.error().message);
    socket = (*loaded)->adminSocket;
    if (socket.empty()) return fail("no admin.socket is configured; site needs the daemon");
  }
  const net::SocketProbe probe = net::probeUnixSocket(socket);
  if (probe.state != net::SocketProbe::State::kAnswers) {
    return fail(probe.message + "; site needs the running daemon");
  }
  std::string body;
  if (a.action == "put") {
    std::ifstream in(a.file, std::ios::binary);
    if (!in) return fail(a.file + ": cannot open");
    body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string method = a.action == "put" ? "PUT" : a.action == "rm" ? "DELETE" : "GET";
  const std::string target =
      a.action == "list" ? "/v1/sites" : "/v1/sites/" + percentEncode(a.name);
  // list and show print text unless --json; put and rm print the JSON answer.
  const bool text = !a.json && (a.action == "list" || a.action == "show");
  auto reply =
      admin::adminRequest(socket, method, target, body, text ? "text/plain" : "application/json");
  if (!reply.ok()) return fail(reply.error().message);
  if (reply->status >= 400) return fail(adminReplyError(*reply, socket));
  std::cout << reply->body << (text ? "" : "\n");
  return 0;
}

}  // namespace

CLI::App* addSiteCommand(CLI::App& app, std::function<int()>* command) {
  CLI::App* site = app.add_subcommand("site",
                                      "sites managed at runtime: list, show NAME,\nput NAME --file "
                                      "F, rm NAME (through the daemon)");
  site->footer(kSiteFooter);
  site->require_subcommand(0, 1);
  auto args = std::make_shared<SiteArgs>();
  auto action = [&](const std::string& name, const std::string& help) {
    CLI::App* sub = site->add_subcommand(name, help);
    if (name != "list")
      sub->add_option("NAME", args->name, "the site's name")->required()->type_name("");
    sub->add_option("-c,--config", args->configPath,
                    "the configuration (YAML); without it, the\nembedded default's")
        ->type_name("FILE");
    sub->add_option("--socket", args->socket,
                    "the admin socket (default: the configuration's\nadmin.socket)")
        ->type_name("PATH");
    sub->add_flag("--json", args->json, "print the result as one JSON value");
    sub->callback([args, command, name] {
      args->action = name;
      *command = [args] { return runSite(*args); };
    });
    return sub;
  };
  action("list", "every site: name, source (config|api), hosts");
  action("show", "one site, as `put` takes it");
  CLI::App* put = action("put", "create or replace the API site NAME");
  put->add_option("--file", args->file, "the site: JSON or YAML")->required()->type_name("F");
  action("rm", "remove the API site NAME");
  return site;
}

}  // namespace tlsedge::cli
