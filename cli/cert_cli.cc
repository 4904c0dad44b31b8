#include "cli/cert_cli.h"

#include <CLI/App.hpp>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "admin/admin_client.h"
#include "admin/cert_text.h"
#include "certstore/files.h"
#include "certstore/json.h"
#include "certstore/manage.h"
#include "cli/cli_common.h"
#include "conf/config.h"
#include "fleet/open_storage.h"
#include "net/unix_socket.h"

namespace tlsedge::cli {
namespace {

// The help of `tlsedge cert` (its footer): which way a command goes.
constexpr const char* kCertFooter =
    "When a daemon answers on the admin socket the command goes through it (and\n"
    "`which` answers from what it serves now). With --socket it must: if nothing\n"
    "answers there, the command fails. Without --socket, only when nothing listens\n"
    "on admin.socket (no socket file, or a stale one) does it work on the state\n"
    "directory of the configuration, saying so on stderr; any other connect error\n"
    "(e.g. permission denied) fails, naming the socket.\n"
    "Exit status: 0 on success, 1 when the operation failed, 2 on a usage error.";

// The parsed command line of one action.
struct CertArgs {
  std::string action;
  std::string arg;  // NAME or HOST ("" for list)
  std::string config;
  std::string socket;
  std::string certPath;
  std::string keyPath;             // add: "" completes the pending request NAME
  std::vector<std::string> hosts;  // request
  std::string keyType = "ecdsa-p256";
  std::string subject;  // request: "" or "/O=.../CN=..."
  bool replace = false;
  bool json = false;
  bool offline = false;
  bool verbose = false;
};

int fail(const std::string& message) {
  std::cerr << "tlsedge cert: " << message << "\n";
  return 1;
}

// Prints a result: the JSON value or the text.
int print(bool json, const std::string& jsonText, const std::string& text) {
  std::cout << (json ? jsonText + "\n" : text);
  return 0;
}

// On the state directory, in this process.
int runOffline(const CertArgs& a, const conf::Config& config) {
  const time_t now = ::time(nullptr);
  auto opened = fleet::openStorage(config);
  if (!opened) return fail(opened.error().message);
  const certstore::CertificateStore store(opened->storage);
  if (a.action == "list") {
    auto entries = certstore::listCertificates(store, config, now);
    if (!entries.ok()) return fail(entries.error().message);
    return print(a.json, certstore::toJson(*entries), admin::listText(*entries, store.directory()));
  }
  const std::string& arg = a.arg;
  if (a.action == "show") {
    auto shown = certstore::showCertificate(store, config, arg, now);
    if (!shown.ok()) return fail(shown.error().message);
    return print(a.json, certstore::toJson(*shown), admin::showText(*shown));
  }
  if (a.action == "which") {
    auto chosen = certstore::whichCertificate(config, arg, now);
    if (!chosen.ok()) return fail(chosen.error().message);
    return print(a.json, certstore::toJson(*chosen), admin::whichText(*chosen));
  }
  if (a.action == "rm") {
    if (Status removed = certstore::removeCertificate(store, config, arg, now); !removed.ok()) {
      return fail(removed.error().message);
    }
    return print(a.json, admin::removedJson(arg), admin::removedText(arg));
  }
  if (a.action == "request") {
    auto requested =
        certstore::requestCertificate(store, config, arg, a.hosts, a.keyType, now, a.subject);
    if (!requested.ok()) return fail(requested.error().message);
    return print(a.json, certstore::toJson(*requested), admin::requestText(*requested));
  }
  auto added = certstore::addCertificate(store, config, arg, a.certPath, a.keyPath, a.replace, now);
  if (!added.ok()) return fail(added.error().message);
  return print(a.json, certstore::toJson(*added), admin::addText(*added));
}

// Through the daemon's admin API, which renders the same output.
int runRemote(const CertArgs& a, const std::string& socket) {
  std::string method = "GET";
  std::string target = "/v1/certificates";
  std::string body;
  const std::string& arg = a.arg;
  if (a.action == "show" || a.action == "rm" || a.action == "add" || a.action == "request") {
    target += "/" + percentEncode(arg);
  }
  if (a.action == "rm") method = "DELETE";
  if (a.action == "which") target = "/v1/which?host=" + percentEncode(arg);
  if (a.action == "request") {
    method = "POST";
    body = certstore::jsonText(nlohmann::ordered_json{
        {"hosts", a.hosts}, {"key_type", a.keyType}, {"subject", a.subject}});
  }
  if (a.action == "add") {
    // The daemon may not be able to read our files: send their contents.
    // Without --key: no `key`, the daemon completes the pending request.
    auto chain = certstore::readFile(a.certPath);
    auto key =
        a.keyPath.empty() ? Result<std::string>(std::string()) : certstore::readFile(a.keyPath);
    std::string problems;
    if (!chain.ok()) problems = chain.error().message;
    if (!key.ok()) problems += (problems.empty() ? "" : "\n") + key.error().message;
    if (!problems.empty()) return fail(problems);
    method = "PUT";
    nlohmann::ordered_json upload{
        {"chain", *chain}, {"replace", a.replace}, {"chain_source", a.certPath}};
    if (!a.keyPath.empty()) {
      upload["key"] = *key;
      upload["key_source"] = a.keyPath;
    }
    body = certstore::jsonText(upload);
  }
  auto reply =
      admin::adminRequest(socket, method, target, body, a.json ? "application/json" : "text/plain");
  if (!reply.ok()) return fail(reply.error().message);
  if (reply->status >= 400) return fail(adminReplyError(*reply, socket));
  return print(a.json, reply->body, reply->body);
}

// The daemon or the state directory (see cert_cli.h), then the action.
int runCert(const CertArgs& a) {
  // An explicit --socket names a daemon: through it or not at all. Falling
  // back would write into another store than the one asked for (issue 15).
  if (!a.socket.empty()) {
    const net::SocketProbe probe = net::probeUnixSocket(a.socket);
    if (probe.state != net::SocketProbe::State::kAnswers) {
      return fail(probe.message + "; with --socket the command goes through that daemon only");
    }
    if (a.verbose) std::cerr << "tlsedge cert: through the daemon on " << a.socket << "\n";
    return runRemote(a, a.socket);
  }
  auto config = loadCliConfig(a.config);
  if (!config.ok()) return fail(config.error().message);
  const std::string& socket = (*config)->adminSocket;
  const std::string& stateDir = (*config)->stateDir;
  if (a.offline) {
    if (a.verbose) std::cerr << "tlsedge cert: on the state directory " << stateDir << "\n";
    return runOffline(a, **config);
  }
  if (socket.empty()) {
    std::cerr << "tlsedge cert: no admin.socket is configured; working on the state directory "
              << stateDir << "\n";
    return runOffline(a, **config);
  }
  const net::SocketProbe probe = net::probeUnixSocket(socket);
  if (probe.state == net::SocketProbe::State::kAnswers) {
    if (a.verbose) std::cerr << "tlsedge cert: through the daemon on " << socket << "\n";
    return runRemote(a, socket);
  }
  // A daemon we cannot reach may still run there: its store is not ours
  // to change behind its back, nor is its absence ours to report.
  if (probe.state == net::SocketProbe::State::kUnknown) {
    return fail(probe.message + "; not working on the state directory " + stateDir +
                " instead (--offline does)");
  }
  // Always said, -v or not: the reader must know which store was used.
  std::cerr << "tlsedge cert: no daemon listens on " << socket
            << "; working on the state directory " << stateDir << "\n";
  return runOffline(a, **config);
}

// -c, --socket | --offline, --json, -v: every action's.
void addOptions(CLI::App* action, CertArgs& a) {
  action
      ->add_option("-c,--config", a.config,
                   "the configuration (YAML); without it, the\nembedded default's")
      ->type_name("FILE");
  CLI::Option* socket =
      action
          ->add_option("--socket", a.socket,
                       "the admin socket (default: the configuration's\nadmin.socket)")
          ->type_name("PATH");
  action->add_flag("--offline", a.offline, "work on the state directory even if a daemon runs")
      ->excludes(socket);
  action->add_flag("--json", a.json, "print the result as one JSON value");
  action->add_flag("-v,--verbose", a.verbose, "say on stderr which way it went");
}

}  // namespace

CLI::App* addCertCommand(CLI::App& app, std::function<int()>* command) {
  CLI::App* cert = app.add_subcommand("cert",
                                      "the stored certificates: add, request, list, show,\n"
                                      "rm, which; through the running daemon, else on\n"
                                      "the state directory of -c FILE");
  cert->footer(kCertFooter);
  cert->require_subcommand(0, 1);
  auto args = std::make_shared<CertArgs>();
  // One action: its NAME or HOST (`arg` empty: none), its options, and what
  // parsing it selects.
  auto action = [&](const std::string& name, const std::string& arg, const std::string& help) {
    CLI::App* sub = cert->add_subcommand(name, help);
    if (!arg.empty()) {
      sub->add_option(arg, args->arg,
                      arg == "HOST"                        ? "a host name, as in a handshake's SNI"
                      : name == "add" || name == "request" ? "the name to store it under"
                                                           : "a stored certificate's name")
          ->required()
          ->type_name("");
    }
    addOptions(sub, *args);
    sub->callback([args, command, name] {
      args->action = name;
      *command = [args] { return runCert(*args); };
    });
    return sub;
  };
  CLI::App* add = action("add", "NAME",
                         "validate a certificate (chain and key) and store\n"
                         "it under NAME in the state directory");
  add->add_option("--cert", args->certPath, "the certificate chain (PEM)")
      ->required()
      ->type_name("CHAIN.pem");
  CLI::Option* key = add->add_option("--key", args->keyPath,
                                     "its private key (PEM); without it, the key of the\n"
                                     "pending request NAME (`cert request`)")
                         ->type_name("KEY.pem");
  add->add_flag("--replace", args->replace, "replace a stored certificate of that name")
      ->needs(key);
  CLI::App* request = action("request", "NAME",
                             "make a private key (kept in the state directory,\n"
                             "never printed) and print a CSR for the hosts;\n"
                             "`cert add NAME --cert SIGNED.pem` completes it");
  request->add_option("--hosts", args->hosts, "the names to certify (subjectAltName)")
      ->required()
      ->delimiter(',')
      ->type_name("HOST,...");
  request
      ->add_option("--key-type", args->keyType,
                   "ecdsa-p256 (default), ecdsa-p384, rsa2048,\nrsa3072 or rsa4096")
      ->type_name("TYPE");
  request
      ->add_option("--subject", args->subject,
                   "the CSR's subject, as openssl req -subj takes it\n"
                   "(/C=DE/O=Example GmbH/CN=shop.example); default:\n"
                   "empty (the hosts are in subjectAltName)")
      ->type_name("/KEY=VALUE/...");
  action("list", "", "stored certificates and pending requests: names, sites, expiry");
  action("show", "NAME", "one certificate's details (never the key)");
  action("rm", "NAME", "remove a certificate no site uses, or a pending\nrequest");
  action("which", "HOST", "the certificate a handshake for HOST gets now");
  return cert;
}

}  // namespace tlsedge::cli
