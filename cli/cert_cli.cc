#include "cli/cert_cli.h"

#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "admin/admin_client.h"
#include "admin/cert_text.h"
#include "certstore/files.h"
#include "certstore/json_text.h"
#include "certstore/manage.h"
#include "cli/cli_common.h"
#include "conf/config.h"
#include "net/unix_socket.h"

namespace tlsedge::proxy {
namespace {

constexpr const char* kCertUsage =
    "usage:\n"
    "  tlsedge cert add NAME --cert CHAIN.pem --key KEY.pem [--replace] [OPTIONS]\n"
    "  tlsedge cert list [OPTIONS]\n"
    "  tlsedge cert show NAME [OPTIONS]\n"
    "  tlsedge cert rm NAME [OPTIONS]\n"
    "  tlsedge cert which HOST [OPTIONS]\n"
    "OPTIONS: -c FILE (the configuration; without it, the embedded default's),\n"
    "--socket PATH (the admin socket; default: the configuration's admin.socket),\n"
    "--offline (work on the state directory even if a daemon runs), --json (print\n"
    "the result as one JSON value), -v (say on stderr which way it went).\n"
    "When a daemon answers on the admin socket the command goes through it (and\n"
    "`which` answers from what it serves now). With --socket it must: if nothing\n"
    "answers there, the command fails. Without --socket, only when nothing listens\n"
    "on admin.socket (no socket file, or a stale one) does it work on the state\n"
    "directory of the configuration, saying so on stderr; any other connect error\n"
    "(e.g. permission denied) fails, naming the socket.\n";

struct CertArgs {
  std::string action;
  std::vector<std::string> positional;
  std::string config;
  std::string socket;
  std::string certPath;
  std::string keyPath;
  bool replace = false;
  bool json = false;
  bool offline = false;
  bool verbose = false;
};

int fail(const std::string& message) {
  std::cerr << "tlsedge cert: " << message << "\n";
  return 1;
}

int usage(const std::string& message) {
  std::cerr << "tlsedge cert: " << message << "\n" << kCertUsage;
  return 2;
}

// Prints a result: the JSON value or the text.
int print(bool json, const std::string& jsonText, const std::string& text) {
  std::cout << (json ? jsonText + "\n" : text);
  return 0;
}

// On the state directory, in this process.
int runOffline(const CertArgs& a, const conf::Config& config) {
  const time_t now = ::time(nullptr);
  if (a.action == "list") {
    auto entries = certstore::listCertificates(config, now);
    if (!entries.ok()) return fail(entries.error().message);
    return print(a.json, certstore::toJson(*entries),
                 listText(*entries, config.stateDir + "/certs"));
  }
  const std::string& arg = a.positional[0];
  if (a.action == "show") {
    auto shown = certstore::showCertificate(config, arg, now);
    if (!shown.ok()) return fail(shown.error().message);
    return print(a.json, certstore::toJson(*shown), showText(*shown));
  }
  if (a.action == "which") {
    auto chosen = certstore::whichCertificate(config, arg, now);
    if (!chosen.ok()) return fail(chosen.error().message);
    return print(a.json, certstore::toJson(*chosen), whichText(*chosen));
  }
  if (a.action == "rm") {
    if (Status removed = certstore::removeCertificate(config, arg, now); !removed.ok()) {
      return fail(removed.error().message);
    }
    return print(a.json, removedJson(arg), removedText(arg));
  }
  auto added = certstore::addCertificate(config, arg, a.certPath, a.keyPath, a.replace, now);
  if (!added.ok()) return fail(added.error().message);
  return print(a.json, certstore::toJson(*added), addText(*added));
}

// Through the daemon's admin API, which renders the same output.
int runRemote(const CertArgs& a, const std::string& socket) {
  std::string method = "GET";
  std::string target = "/v1/certificates";
  std::string body;
  const std::string arg = a.positional.empty() ? "" : a.positional[0];
  if (a.action == "show" || a.action == "rm" || a.action == "add") {
    target += "/" + percentEncode(arg);
  }
  if (a.action == "rm") method = "DELETE";
  if (a.action == "which") target = "/v1/which?host=" + percentEncode(arg);
  if (a.action == "add") {
    // The daemon may not be able to read our files: send their contents.
    auto chain = certstore::readFile(a.certPath);
    auto key = certstore::readFile(a.keyPath);
    std::string problems;
    if (!chain.ok()) problems = chain.error().message;
    if (!key.ok()) problems += (problems.empty() ? "" : "\n") + key.error().message;
    if (!problems.empty()) return fail(problems);
    method = "PUT";
    body = "{\"chain\":" + certstore::jsonQuote(*chain) + ",\"key\":" + certstore::jsonQuote(*key) +
           ",\"replace\":" + (a.replace ? "true" : "false") +
           ",\"chain_source\":" + certstore::jsonQuote(a.certPath) +
           ",\"key_source\":" + certstore::jsonQuote(a.keyPath) + "}";
  }
  auto reply =
      adminRequest(socket, method, target, body, a.json ? "application/json" : "text/plain");
  if (!reply.ok()) return fail(reply.error().message);
  if (reply->status >= 400) return fail(adminReplyError(*reply, socket));
  return print(a.json, reply->body, reply->body);
}

}  // namespace

int runCertCommand(int argc, char** argv) {
  CertArgs a;
  if (argc < 1) return usage("missing action");
  a.action = argv[0];
  if (a.action == "help" || a.action == "--help" || a.action == "-h") {
    std::cout << kCertUsage;
    return 0;
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (arg == "-c" || arg == "--config") {
      if (!value(&a.config)) return usage(arg + " needs a value");
    } else if (arg == "--cert") {
      if (!value(&a.certPath)) return usage(arg + " needs a value");
    } else if (arg == "--key") {
      if (!value(&a.keyPath)) return usage(arg + " needs a value");
    } else if (arg == "--replace") {
      a.replace = true;
    } else if (arg == "--socket") {
      if (!value(&a.socket)) return usage(arg + " needs a value");
    } else if (arg == "--json") {
      a.json = true;
    } else if (arg == "--offline") {
      a.offline = true;
    } else if (arg == "-v" || arg == "--verbose") {
      a.verbose = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return usage("unknown option '" + arg + "'");
    } else {
      a.positional.push_back(arg);
    }
  }
  const bool takesOne =
      a.action == "add" || a.action == "show" || a.action == "rm" || a.action == "which";
  if (a.action != "list" && !takesOne) return usage("unknown action '" + a.action + "'");
  if (takesOne && a.positional.size() != 1) {
    return usage(a.action + ": needs exactly one " + (a.action == "which" ? "HOST" : "NAME"));
  }
  if (a.action == "list" && !a.positional.empty()) return usage("list takes no arguments");
  if (a.action != "add" && (!a.certPath.empty() || !a.keyPath.empty() || a.replace)) {
    return usage("--cert, --key and --replace belong to add");
  }
  if (a.action == "add" && (a.certPath.empty() || a.keyPath.empty())) {
    return usage("add: --cert and --key are required");
  }

  if (a.offline && !a.socket.empty()) return usage("--offline and --socket exclude each other");

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

}  // namespace tlsedge::proxy
