// CertificateStore: the certificates kept in Storage (certstore/storage.h),
// one group per entry. In the state directory:
//
//   <state>/certs/<name>/fullchain.pem   leaf first, then intermediates
//   <state>/certs/<name>/privkey.pem     PKCS#8, mode 0600, never printed
//   <state>/certs/<name>/meta.json       {"source":..., "created":..., "updated":..., "site":...}
//
// Pending certificate requests (`tlsedge cert request`: a CA the operator
// deals with by hand signs the request, `cert add NAME --cert` completes it):
//
//   <state>/requests/<name>/privkey.pem   PKCS#8, mode 0600, never printed
//   <state>/requests/<name>/request.pem   the CSR (PEM)
//   <state>/requests/<name>/meta.json
//   {"hosts":[...],"key_type":...,"requested":"...Z"[,"subject":...]}
//
// A name is a stored certificate or a pending request, never both (request()
// and add() refuse a clash); complete() stores the certificate with the
// pending key, then removes the request.
//
// add() validates with parseCredentials (so every message is the one the
// daemon gives at load time), then writes the three as one group
// (Storage::storeGroup): a crash at any point leaves the old entry or the
// new one whole.
//
// Thread: blocking I/O: control loop, thread pool or CLI, never a worker.
// Not synchronised: one writer at a time (the daemon's control loop, or the
// CLI when no daemon runs).
#pragma once

#include <ctime>
#include <string>
#include <vector>

#include "base/result.h"
#include "certstore/credentials.h"
#include "certstore/file_storage.h"
#include "certstore/key_material.h"
#include "certstore/storage.h"
#include "conf/config.h"

namespace tlsedge::certstore {

enum class CertSource { kUpload, kAcme, kInternal };
const char* certSourceName(CertSource source);

struct CertMeta {
  CertSource source = CertSource::kUpload;
  time_t created = 0;
  time_t updated = 0;
  std::string site;  // ACME: the site it was ordered for; empty otherwise
};

// meta.json text (one line), and back, with nlohmann/json. Reading refuses
// what is not a JSON object or gives a known key a value that is not a
// string (`SOURCE: not the meta.json tlsedge writes`), an unknown source
// or a bad time; unknown keys are ignored.
std::string metaToJson(const CertMeta& meta);
Result<CertMeta> metaFromJson(const std::string& json, const std::string& source);

// Fields of a stored certificate for display, read without the validity
// check (list and show must show expired certificates too). Never holds key
// material: only its type and size.
struct CertInfo {
  std::string name;
  std::string subject;
  std::string issuer;
  std::string issuerCn;  // "" when the issuer has no CN
  std::vector<std::string> dnsNames;
  std::vector<std::string> ipAddresses;
  std::string serialHex;
  std::string sha256Fingerprint;
  time_t notBefore = 0;
  time_t notAfter = 0;
  size_t chainLength = 0;
  std::string keyType;  // "ECDSA P-256", "RSA 2048", or the reason it is unreadable
  CertMeta meta;
};

// A pending request (never its key).
struct PendingRequest {
  std::string name;
  std::vector<std::string> hosts;
  std::string keyType;  // newKeyTypeName: "ecdsa-p256", ...
  std::string subject;  // as given ("/O=.../CN=..."), "" for none
  time_t requested = 0;
  std::string csrPem;  // "-----BEGIN CERTIFICATE REQUEST-----"
};

struct AddResult {
  CredentialsPtr credentials;      // as validated and written (DER in sharedBufferPool())
  std::vector<std::string> notes;  // e.g. "dropped the root certificate ..."
  bool replaced = false;
};

class CertificateStore {
 public:
  explicit CertificateStore(StoragePtr storage) : storage_(std::move(storage)) {}
  // The node's own store: config.stateDir, what this node serves from. It
  // is the whole store of a single node, and in fleet mode (issue 17) the
  // local replica of the fleet's. Writes that must reach the fleet go to the
  // store of the storage the daemon or CLI opened (openStorage), injected.
  static CertificateStore local(const conf::Config& config) {
    return CertificateStore(FileStorage::open(config.stateDir));
  }
  // The store of the state directory `stateDir` (tests, benchmarks).
  static CertificateStore forStateDir(const std::string& stateDir) {
    return CertificateStore(FileStorage::open(stateDir));
  }

  // As messages name them (for the state directory: paths).
  std::string directory() const { return storage_->describe(kCerts); }
  std::string chainPath(const std::string& name) const {
    return storage_->describe(key(name, kChain));
  }
  std::string keyPath(const std::string& name) const { return storage_->describe(key(name, kKey)); }
  // An entry's chain as stored (PEM).
  Result<std::string> chainPem(const std::string& name) const;
  Storage& storage() const { return *storage_; }

  // Names of the stored entries (groups with a fullchain.pem), sorted.
  // A missing certs/ group is an empty store.
  Result<std::vector<std::string>> names() const;
  Result<bool> contains(const std::string& name) const;

  // Loads and validates one entry (loadCredentials: same checks, same
  // messages). loadAll passes Verify::kStored: at start, the chain
  // signatures add() verified are not verified again. One entry changing
  // under a running daemon (which may be a hand-made one) is checked fully.
  Result<CredentialsPtr> load(const std::string& name, CRYPTO_BUFFER_POOL* pool, time_t now,
                              Verify verify = Verify::kFull) const;
  // load(kStored) for each of `names`, results in the same order. Runs on up to
  // `threads` threads (0: one per CPU the process may run on, at most kMaxLoadThreads) that it
  // starts and joins before returning; under kParallelLoadMinimum names, or
  // with one thread, everything runs on the calling thread. For the start of
  // the daemon and whole-store reloads on the control loop (store_load.cc).
  static constexpr size_t kMaxLoadThreads = 8;
  static constexpr size_t kParallelLoadMinimum = 64;
  std::vector<Result<CredentialsPtr>> loadAll(const std::vector<std::string>& names,
                                              CRYPTO_BUFFER_POOL* pool, time_t now,
                                              size_t threads = 0) const;

  Result<CertInfo> inspect(const std::string& name) const;

  // Validates then writes atomically. Refuses an existing name unless
  // `replace`, and a missing one with `replace` is simply added.
  // `chainSource` / `keySource` name the inputs in messages.
  Result<AddResult> add(const std::string& name, const std::string& chainPem,
                        const std::string& keyPem, bool replace, CertSource source, time_t now,
                        const std::string& chainSource = "chain",
                        const std::string& keySource = "key", const std::string& site = {}) const;

  // Removes an entry, atomically.
  Status remove(const std::string& name) const;

  // Pending requests. request(): a fresh key and a CSR naming `hosts` (in
  // subjectAltName), written as one group; refuses (kConflict) a name a
  // certificate or a pending request already uses. complete(): add() with
  // the pending key (`chainSource` names the certificate in messages, the
  // key is named after the request), then removes the request; a refusal
  // (e.g. a certificate for another key) leaves the request as it was.
  std::string requestsDirectory() const { return storage_->describe(kRequests); }
  Result<PendingRequest> request(const std::string& name, const std::vector<std::string>& hosts,
                                 NewKeyType keyType, time_t now,
                                 const std::string& subject = {}) const;
  Result<std::vector<std::string>> pendingNames() const;
  Result<bool> pendingContains(const std::string& name) const;
  Result<PendingRequest> pending(const std::string& name) const;
  Result<AddResult> complete(const std::string& name, const std::string& chainPem, time_t now,
                             const std::string& chainSource = "chain") const;
  Status removePending(const std::string& name) const;

 private:
  static constexpr const char* kCerts = "certs";
  static constexpr const char* kChain = "fullchain.pem";
  static constexpr const char* kKey = "privkey.pem";
  static constexpr const char* kMeta = "meta.json";
  static constexpr const char* kRequests = "requests";
  static constexpr const char* kCsr = "request.pem";
  static std::string key(const std::string& name, const char* item = nullptr) {
    return std::string(kCerts) + "/" + name + (item ? std::string("/") + item : "");
  }
  static std::string requestKey(const std::string& name, const char* item = nullptr) {
    return std::string(kRequests) + "/" + name + (item ? std::string("/") + item : "");
  }
  // The groups under `dir` holding `item`, sorted.
  Result<std::vector<std::string>> groupsWith(const char* dir, const char* item) const;
  // kConflict when a pending request named `name` exists.
  Status checkNotPending(const std::string& name) const;
  // add() without that check (complete() adds under its own request's name).
  Result<AddResult> addEntry(const std::string& name, const std::string& chainPem,
                             const std::string& keyPem, bool replace, CertSource source, time_t now,
                             const std::string& chainSource, const std::string& keySource,
                             const std::string& site) const;

  StoragePtr storage_;
};

}  // namespace tlsedge::certstore
