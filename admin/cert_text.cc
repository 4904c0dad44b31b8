#include "admin/cert_text.h"

#include <algorithm>

#include "base/time.h"
#include "certstore/json.h"
#include "certstore/x509_text.h"

namespace tlsedge::admin {
namespace {

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

}  // namespace

std::string listText(const std::vector<certstore::CertListEntry>& entries,
                     const std::string& certsDir) {
  if (entries.empty()) return "no certificates in " + certsDir + "\n";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NAME", "NAMES", "SITES", "ISSUER", "NOT AFTER", "DAYS LEFT"});
  for (const certstore::CertListEntry& e : entries) {
    if (e.pending) {  // keyType holds why when the request is unreadable
      rows.push_back({e.info.name, e.info.dnsNames.empty() ? "-" : names(e.info), "-", "-", "-",
                      e.requested == 0 ? "PENDING: " + e.info.keyType
                                       : "PENDING request since " + utc::format(e.requested)});
      continue;
    }
    if (e.info.notAfter == 0) {  // unreadable entry: keyType holds why
      rows.push_back({e.info.name, "-", "-", "-", "-", "UNREADABLE: " + e.info.keyType});
      continue;
    }
    rows.push_back({e.info.name, names(e.info), sitesText(e),
                    e.info.issuerCn.empty() ? e.info.issuer : e.info.issuerCn,
                    utc::format(e.info.notAfter), daysText(e)});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += "\n";
  }
  return out;
}

std::string requestText(const certstore::PendingRequest& request) { return request.csrPem; }

std::string showText(const certstore::CertListEntry& entry) {
  const certstore::CertInfo& info = entry.info;
  return "name:        " + info.name + "\n" +                    //
         "subject:     " + info.subject + "\n" +                 //
         "names:       " + names(info) + "\n" +                  //
         "issuer:      " + info.issuer + "\n" +                  //
         "serial:      " + info.serialHex + "\n" +               //
         "not before:  " + utc::format(info.notBefore) + "\n" +  //
         "not after:   " + utc::format(info.notAfter) + " (" + lifeText(entry) + ")\n" +
         "sha256:      " + info.sha256Fingerprint + "\n" +  //
         "key:         " + info.keyType + "\n" +            //
         "chain:       " + std::to_string(info.chainLength) +
         (info.chainLength == 1 ? " certificate\n" : " certificates\n") +
         "source:      " + certstore::certSourceName(info.meta.source) + "\n" +
         "updated:     " + (info.meta.updated != 0 ? utc::format(info.meta.updated) : "-") + "\n" +
         "sites:       " + sitesText(entry) + "\n";
}

std::string whichText(const certstore::WhichOutcome& outcome) {
  return "host:        " + outcome.host + "\n" +               //
         "certificate: " + outcome.name + "\n" +               //
         "serial:      " + outcome.serialHex + "\n" +          //
         "sha256:      " + outcome.sha256Fingerprint + "\n" +  //
         "how:         " + outcome.how +
         (outcome.site.empty() ? "" : " (site " + outcome.site + ")") + "\n";
}

std::string addText(const certstore::AddOutcome& outcome) {
  std::string out;
  for (const std::string& note : outcome.notes) out += "note: " + note + "\n";
  return out + (outcome.replaced ? "replaced `" : "added `") + outcome.name + "` in " +
         outcome.directory + ": " + joined(outcome.dnsNames, ",") + ", serial " +
         outcome.serialHex + ", valid until " + utc::format(outcome.notAfter) + "\n";
}

std::string removedText(const std::string& name) { return "removed `" + name + "`\n"; }

std::string removedJson(const std::string& name) {
  return certstore::jsonText(nlohmann::ordered_json{{"removed", name}});
}

}  // namespace tlsedge::admin
