// Certificate management operations: `tlsedge cert add|list|show|rm|which`.
//
// Each operation works on the state directory of a configuration and returns
// plain data (or an Error whose message is ready for an operator); callers
// only format. The CLI calls them directly when no daemon runs; the admin
// socket (admin/admin_api.h) serves the same functions. Which sites use a
// certificate comes from CertificateUsers: the CLI rebuilds the bindings
// from the files (fromFiles: reads and validates the whole store), a daemon
// takes them from the snapshot it serves (fromSnapshot: reads nothing), as
// it answers `which` (whichFromSelector).
//
// Thread: blocking disk I/O: control loop, thread pool or CLI.
#pragma once

#include <ctime>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "certstore/store.h"
#include "conf/config.h"

namespace tlsedge::certstore {

class Selector;

// Which sites' handshakes use each certificate: the sites naming it
// (tls.certificate, tls.fallback_certificate), then the sites whose hosts
// are bound to it, each once, in configuration order.
class CertificateUsers {
 public:
  // From the bindings a rebuild from the files gives: O(store), reading and
  // validating every entry (the offline CLI).
  static CertificateUsers fromFiles(const conf::Config& config, time_t now);
  // From `served`, the snapshot a daemon serves: O(sites + site hosts), no
  // file read; `served` is immutable, so any thread may do this.
  static CertificateUsers fromSnapshot(const conf::Config& config, const Selector& served);

  const std::vector<std::string>& sites(const std::string& name) const;

 private:
  void add(const std::string& name, const std::string& site);
  void addNamingSites(const conf::Config& config);
  std::unordered_map<std::string, std::vector<std::string>> byName_;
};

// 14 days or less left: marked as expiring in listings.
inline constexpr int kExpiringDays = 14;

struct CertListEntry {
  // A pending request (`cert request`) has only info.name, info.dnsNames
  // (its hosts), info.keyType and `requested`.
  bool pending = false;
  time_t requested = 0;
  CertInfo info;
  std::vector<std::string> sites;  // sites whose handshakes use it
  bool isDefault = false;          // tls.default_certificate
  long daysLeft = 0;               // whole days until notAfter (negative: expired)
  bool expired = false;
  bool expiring = false;  // not expired, kExpiringDays or fewer left
};

struct AddOutcome {
  std::string name;
  std::string directory;  // where it was written
  std::vector<std::string> dnsNames;
  std::string serialHex;
  time_t notAfter = 0;
  std::vector<std::string> notes;
  bool replaced = false;
  // What was validated and written: a daemon serves these at once.
  CredentialsPtr credentials;
};

struct WhichOutcome {
  std::string host;
  std::string name;  // certificate name
  std::string serialHex;
  std::string sha256Fingerprint;
  std::string how;   // "exact", "wildcard" (", store" / ", default"), "fallback", "default"
  std::string site;  // "" for the default without a site
};

// The results as JSON objects (arrays for lists), e.g. for `--json` and the
// admin socket. Times are ISO 8601 UTC strings; never any key material.
std::string toJson(const CertListEntry& entry);
std::string toJson(const std::vector<CertListEntry>& entries);
std::string toJson(const AddOutcome& outcome);
std::string toJson(const WhichOutcome& outcome);

// Reads the two files, then addCertificatePem; `keyPath` empty: reads the
// chain, then completeCertificatePem.
Result<AddOutcome> addCertificate(const CertificateStore& store, const conf::Config& config,
                                  const std::string& name, const std::string& chainPath,
                                  const std::string& keyPath, bool replace, time_t now);
// Validates and writes PEM text (an upload); `chainSource` / `keySource`
// name the inputs in messages (e.g. the files the CLI read them from).
Result<AddOutcome> addCertificatePem(const CertificateStore& store, const conf::Config& config,
                                     const std::string& name, const std::string& chainPem,
                                     const std::string& keyPem, bool replace, time_t now,
                                     const std::string& chainSource, const std::string& keySource);
// Completes the pending request `name` (`cert add NAME --cert` without
// --key): the certificate must be for its key; the request is then gone.
Result<AddOutcome> completeCertificatePem(const CertificateStore& store, const conf::Config& config,
                                          const std::string& name, const std::string& chainPem,
                                          time_t now, const std::string& chainSource);
// `cert request`: a fresh key kept in the store (never printed) and the
// CSR for `hosts`. `keyType` as newKeyTypeFromName reads it. A name that
// `certificates:`, a stored certificate or a pending request uses is refused.
Result<PendingRequest> requestCertificate(const CertificateStore& store, const conf::Config& config,
                                          const std::string& name,
                                          const std::vector<std::string>& hosts,
                                          const std::string& keyType, time_t now,
                                          const std::string& subject = {});
// name, hosts, key_type, subject, requested, csr
std::string toJson(const PendingRequest& request);

// list, show and rm with the users they report and refuse by: the overloads
// without `users` take CertificateUsers::fromFiles.
Result<std::vector<CertListEntry>> listCertificates(const CertificateStore& store,
                                                    const conf::Config& config,
                                                    const CertificateUsers& users, time_t now);
Result<std::vector<CertListEntry>> listCertificates(const CertificateStore& store,
                                                    const conf::Config& config, time_t now);
Result<CertListEntry> showCertificate(const CertificateStore& store, const conf::Config& config,
                                      const CertificateUsers& users, const std::string& name,
                                      time_t now);
Result<CertListEntry> showCertificate(const CertificateStore& store, const conf::Config& config,
                                      const std::string& name, time_t now);
// listCertificates lists the pending requests after the certificates.
// removeCertificate removes the pending request NAME if there is one (a
// request has no users), and then nothing else; else the certificate. Refused while a site or
// tls.default_certificate uses the certificate.
Status removeCertificate(const CertificateStore& store, const conf::Config& config,
                         const CertificateUsers& users, const std::string& name);
Status removeCertificate(const CertificateStore& store, const conf::Config& config,
                         const std::string& name, time_t now);
// What a handshake for `host` would get now (same lookup as the daemon):
// builds the snapshot from the files, then whichFromSelector.
Result<WhichOutcome> whichCertificate(const conf::Config& config, const std::string& host,
                                      time_t now);
// What a handshake for `host` gets from `selector` (a client accepting
// ECDSA); `config` only names the site and how it binds. No disk access.
Result<WhichOutcome> whichFromSelector(const conf::Config& config, const Selector& selector,
                                       const std::string& host);

}  // namespace tlsedge::certstore
