#include "proxy/cert_cli.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "certstore/json_text.h"
#include "certstore/manage.h"
#include "certstore/x509_text.h"
#include "conf/config.h"

namespace tlsedge::proxy {
namespace {

constexpr const char* kCertUsage =
    "usage:\n"
    "  tlsedge cert add NAME --cert CHAIN.pem --key KEY.pem [--replace] [-c FILE]\n"
    "  tlsedge cert list [-c FILE]\n"
    "  tlsedge cert show NAME [-c FILE]\n"
    "  tlsedge cert rm NAME [-c FILE]\n"
    "  tlsedge cert which HOST [-c FILE]\n"
    "These work on the state directory of the configuration (-c FILE; without\n"
    "it, the embedded default's). --json prints the result as one JSON value.\n";

struct CertArgs {
  std::string action;
  std::vector<std::string> positional;
  std::string config;
  std::string certPath;
  std::string keyPath;
  bool replace = false;
  bool json = false;
};

std::string joined(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

std::string names(const certstore::CertInfo& info) {
  std::vector<std::string> all = info.dnsNames;
  all.insert(all.end(), info.ipAddresses.begin(), info.ipAddresses.end());
  return joined(all, ",");
}

std::string sitesText(const certstore::CertListEntry& entry) {
  std::vector<std::string> users = entry.sites;
  if (entry.isDefault) users.push_back("(default)");
  return users.empty() ? "-" : joined(users, ",");
}

std::string daysText(const certstore::CertListEntry& entry) {
  std::string days = std::to_string(entry.daysLeft);
  if (entry.expired) return days + " EXPIRED";
  if (entry.expiring) return days + " ! expiring";
  return days;
}

std::string lifeText(const certstore::CertListEntry& entry) {
  if (entry.expired) return "EXPIRED " + std::to_string(-entry.daysLeft) + " days ago";
  return std::to_string(entry.daysLeft) + " days left" + (entry.expiring ? ", expiring" : "");
}

int fail(const std::string& message) {
  std::cerr << "tlsedge cert: " << message << "\n";
  return 1;
}

int usage(const std::string& message) {
  std::cerr << "tlsedge cert: " << message << "\n" << kCertUsage;
  return 2;
}

Result<conf::ConfigPtr> loadConfig(const std::string& path) {
  if (!path.empty()) return conf::loadFile(path);
  return conf::loadString(conf::kDefaultConfigYaml, "<embedded default>",
                          std::filesystem::current_path().string());
}

int list(const conf::Config& config, time_t now, bool json) {
  auto entries = certstore::listCertificates(config, now);
  if (!entries.ok()) return fail(entries.error().message);
  if (json) {
    std::cout << certstore::toJson(*entries) << "\n";
    return 0;
  }
  if (entries->empty()) {
    std::cout << "no certificates in " << config.stateDir << "/certs\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NAME", "NAMES", "SITES", "ISSUER", "NOT AFTER", "DAYS LEFT"});
  for (const certstore::CertListEntry& e : *entries) {
    if (e.info.notAfter == 0) {  // unreadable entry: keyType holds why
      rows.push_back({e.info.name, "-", "-", "-", "-", "UNREADABLE: " + e.info.keyType});
      continue;
    }
    rows.push_back({e.info.name, names(e.info), sitesText(e),
                    e.info.issuerCn.empty() ? e.info.issuer : e.info.issuerCn,
                    certstore::isoTime(e.info.notAfter), daysText(e)});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  return 0;
}

int show(const conf::Config& config, const std::string& name, time_t now, bool json) {
  auto shown = certstore::showCertificate(config, name, now);
  if (!shown.ok()) return fail(shown.error().message);
  if (json) {
    std::cout << certstore::toJson(*shown) << "\n";
    return 0;
  }
  const certstore::CertInfo& info = shown->info;
  std::cout << "name:        " << info.name << "\n"
            << "subject:     " << info.subject << "\n"
            << "names:       " << names(info) << "\n"
            << "issuer:      " << info.issuer << "\n"
            << "serial:      " << info.serialHex << "\n"
            << "not before:  " << certstore::isoTime(info.notBefore) << "\n"
            << "not after:   " << certstore::isoTime(info.notAfter) << " (" << lifeText(*shown)
            << ")\n"
            << "sha256:      " << info.sha256Fingerprint << "\n"
            << "key:         " << info.keyType << "\n"
            << "chain:       " << info.chainLength
            << (info.chainLength == 1 ? " certificate\n" : " certificates\n")
            << "source:      " << certstore::certSourceName(info.meta.source) << "\n"
            << "updated:     "
            << (info.meta.updated != 0 ? certstore::isoTime(info.meta.updated) : "-") << "\n"
            << "sites:       " << sitesText(*shown) << "\n";
  return 0;
}

int which(const conf::Config& config, const std::string& host, time_t now, bool json) {
  auto chosen = certstore::whichCertificate(config, host, now);
  if (!chosen.ok()) return fail(chosen.error().message);
  if (json) {
    std::cout << certstore::toJson(*chosen) << "\n";
    return 0;
  }
  std::cout << "host:        " << chosen->host << "\n"
            << "certificate: " << chosen->name << "\n"
            << "serial:      " << chosen->serialHex << "\n"
            << "sha256:      " << chosen->sha256Fingerprint << "\n"
            << "how:         " << chosen->how
            << (chosen->site.empty() ? "" : " (site " + chosen->site + ")") << "\n";
  return 0;
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
    } else if (arg == "--json") {
      a.json = true;
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

  auto config = loadConfig(a.config);
  if (!config.ok()) return fail(config.error().message);
  const time_t now = ::time(nullptr);

  if (a.action == "list") return list(**config, now, a.json);
  const std::string& arg = a.positional[0];
  if (a.action == "show") return show(**config, arg, now, a.json);
  if (a.action == "which") return which(**config, arg, now, a.json);
  if (a.action == "rm") {
    if (Status removed = certstore::removeCertificate(**config, arg, now); !removed.ok()) {
      return fail(removed.error().message);
    }
    if (a.json) {
      std::cout << "{\"removed\":" << certstore::jsonQuote(arg) << "}\n";
    } else {
      std::cout << "removed `" << arg << "`\n";
    }
    return 0;
  }
  auto added = certstore::addCertificate(**config, arg, a.certPath, a.keyPath, a.replace, now);
  if (!added.ok()) return fail(added.error().message);
  if (a.json) {
    std::cout << certstore::toJson(*added) << "\n";
    return 0;
  }
  for (const std::string& note : added->notes) std::cout << "note: " << note << "\n";
  std::cout << (added->replaced ? "replaced `" : "added `") << added->name << "` in "
            << added->directory << ": " << joined(added->dnsNames, ",") << ", serial "
            << added->serialHex << ", valid until " << certstore::isoTime(added->notAfter) << "\n";
  return 0;
}

}  // namespace tlsedge::proxy
