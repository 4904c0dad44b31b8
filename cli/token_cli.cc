#include "cli/token_cli.h"

#include <CLI/CLI.hpp>
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "admin/tokens.h"
#include "base/time.h"
#include "certstore/json.h"
#include "cli/cli_common.h"

namespace tlsedge::cli {
namespace {

struct TokenArgs {
  std::string action;
  std::string name;
  std::string scopes;
  std::string config;
  bool json = false;
};

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ",") + name;
  return out;
}

int runToken(const TokenArgs& a) {
  auto config = loadCliConfig(a.config);
  if (!config) {
    std::cerr << "tlsedge token: " << config.error().message << "\n";
    return 1;
  }
  const std::string path = admin::tokensPath((*config)->stateDir);
  if (a.action == "add") {
    auto scopes = admin::parseScopes(a.scopes);
    if (!scopes) {
      std::cerr << "tlsedge token add: --scopes: " << scopes.error().message << "\n";
      return 1;
    }
    auto secret = admin::addToken(path, a.name, *scopes, ::time(nullptr));
    if (!secret) {
      std::cerr << "tlsedge token add: " << secret.error().message << "\n";
      return 1;
    }
    if (a.json) {
      const nlohmann::json made = {
          {"name", a.name}, {"scopes", admin::scopeNames(*scopes)}, {"token", *secret}};
      std::cout << certstore::jsonText(made) << "\n";
    } else {
      std::cout << *secret << "\n";
      std::cerr << "token " << a.name << " (" << joined(admin::scopeNames(*scopes))
                << "): shown this once; only its SHA-256 is kept in " << path << "\n";
    }
    return 0;
  }
  if (a.action == "rm") {
    if (Status removed = admin::removeToken(path, a.name); !removed) {
      std::cerr << "tlsedge token rm: " << removed.error().message << "\n";
      return 1;
    }
    return 0;
  }
  auto tokens = admin::readTokens(path);
  if (!tokens) {
    std::cerr << "tlsedge token list: " << tokens.error().message << "\n";
    return 1;
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [hash, token] : *tokens) {
    if (a.json) {
      list.push_back({{"name", token.name},
                      {"scopes", admin::scopeNames(token.scopes)},
                      {"created", utc::format(token.created)}});
    } else {
      std::cout << token.name << "  " << joined(admin::scopeNames(token.scopes)) << "  created "
                << utc::format(token.created) << "\n";
    }
  }
  if (a.json) std::cout << certstore::jsonText(list) << "\n";
  return 0;
}

}  // namespace

CLI::App* addTokenCommand(CLI::App& app, std::function<int()>* command) {
  CLI::App* token = app.add_subcommand("token",
                                       "API tokens of the HTTPS management API (admin.listen):\n"
                                       "add, list, rm; on the state directory of -c FILE");
  token->require_subcommand(0, 1);
  auto args = std::make_shared<TokenArgs>();
  auto action = [&](const std::string& name, const std::string& help) {
    CLI::App* sub = token->add_subcommand(name, help);
    if (name != "list") {
      sub->add_option("NAME", args->name, "the token's name")->required()->type_name("");
    }
    sub->add_option("-c,--config", args->config,
                    "the configuration (YAML); without it, the\nembedded default's")
        ->type_name("FILE");
    sub->add_flag("--json", args->json, "print the result as one JSON value");
    sub->callback([args, command, name] {
      args->action = name;
      *command = [args] { return runToken(*args); };
    });
    return sub;
  };
  CLI::App* add = action("add", "make a token; prints it, the only time it is shown");
  add->add_option("--scopes", args->scopes,
                  "what it may do: read, certificates, sites, acme\n(comma-separated), or all")
      ->required()
      ->type_name("LIST");
  action("list", "the tokens: name, scopes, when made (never the secret)");
  action("rm", "remove a token: it stops working at its next request");
  return token;
}

}  // namespace tlsedge::cli
