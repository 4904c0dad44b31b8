// AdminApi: the admin API's endpoints, one parsed request -> one response.
// The transport (HTTP/1.1 on a Unix socket) is admin/admin_server.h.
//
//   GET    /v1/certificates        list (certstore::listCertificates)
//   GET    /v1/certificates/NAME   show
//   PUT    /v1/certificates/NAME   add or replace; body: a JSON object
//          {"chain": PEM, "key": PEM, "replace": bool, optional
//          "chain_source"/"key_source": what to call the inputs in messages};
//          without "key": completes the pending request NAME
//   POST   /v1/certificates/NAME   a pending request (`cert request`): body
//          {"hosts": [...], "key_type": TYPE, "subject": "/K=V/..."}; 201
//          with the CSR
//   DELETE /v1/certificates/NAME   remove (refused while a site uses it), or
//                                  the pending request NAME
//   GET    /v1/which?host=H        the certificate a handshake for H gets now,
//                                  from the snapshot being served
//   GET    /v1/acme                every `tls: { acme: true }` site: certificate,
//                                  not-after, next renewal, last error
//                                  (acme/status.h)
//   POST   /v1/acme/SITE/renew     order SITE's certificate now (202; 404
//                                  unknown site, 409 an order is running)
//   POST   /v1/acme/SITE/revoke    revoke SITE's certificate (RFC 8555 section
//                                  7.6) and order a new one at once; body
//                                  empty or {"reason": CODE or NAME}
//                                  (acme/revocation.h); 202, errors as renew
//                                  (400 a bad reason)
//   /v1/sites...                   sites managed at runtime: hooks.sites
//                                  (admin/sites_api.h)
//   GET    /console, /console/FILE the web console's files; GET / redirects
//                                  there (admin/console.h)
//
// Bodies are JSON (manage.h's toJson), or with `Accept: text/plain` the text
// `tlsedge cert` prints (admin/cert_text.h), so that the CLI prints the same
// through the daemon as on the state directory. Errors are always JSON
// {"error": "..."}: 400 bad request, 404 unknown name or path, 405 wrong
// method, 409 name taken (add without replace) or in use (rm), 422
// refused material (the validation message). After a successful add,
// replace or rm, `storeChanged(NAME, credentials)` hands what was validated
// (null for rm) to the hot swap, which serves it at once. The private key is never in a response or
// a log line.
//
// Every certificate operation (list, show, an upload, rm) reads or writes
// the storage (list: every entry; in fleet mode etcd) and runs through
// `offload` (the daemon: libuv's thread pool), with the config
// and the snapshot being served taken on the control loop as they are then
// (both immutable); the sites using a certificate come from that snapshot
// (certstore::CertificateUsers::fromSnapshot), never from a rebuild of the
// whole store. So no admin read stalls the control loop.
//
// Thread: control loop, except the offloaded work (a pool thread).
#pragma once

#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "acme/status.h"
#include "certstore/selector.h"
#include "certstore/store.h"
#include "conf/config.h"

namespace tlsedge::admin {

struct AdminRequest {
  std::string method;  // "GET", ...
  std::string target;  // "/v1/which?host=a.example"
  std::string body;
  bool text = false;          // Accept: text/plain
  std::string authorization;  // the Authorization header, if any
  std::string peer;           // the client's address (TCP); "" on the Unix socket
  // The subject CN of the client certificate, if one was sent and verified.
  std::string clientCertificate;
};

struct AdminResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::string allow;         // 405: the methods the path takes
  int retryAfter = 0;        // seconds; 0: no Retry-After
  std::string authenticate;  // 401: the WWW-Authenticate challenge
  // More header lines (name, value), written as they are: the web console's
  // security headers, a redirect's Location (admin/console.h).
  std::vector<std::pair<std::string, std::string>> headers;
};

class AdminApi {
 public:
  using Reply = std::function<void(AdminResponse)>;
  using Work = std::function<AdminResponse()>;

  struct Hooks {
    std::function<conf::ConfigPtr()> config;  // the running configuration
    std::function<std::shared_ptr<const certstore::Selector>()> selector;  // being served
    // After add/replace (the credentials as validated) or rm (null).
    std::function<void(const std::string& name, certstore::CredentialsPtr)> storeChanged;
    std::function<time_t()> now = [] { return ::time(nullptr); };
    // The ACME manager (empty: the /v1/acme endpoints answer 503).
    std::function<std::vector<acme::SiteStatus>()> acmeStatus;
    // Errors by kind: kNotFound (no such ACME site), kConflict (an order
    // is running), kUnavailable (cannot order now).
    std::function<Status(const std::string& site)> acmeRenew;
    std::function<Status(const std::string& site, std::optional<int> reason)> acmeRevoke;
    // Runs `work` away from the control loop, then `done` with its answer on
    // the control loop. Default: both at once, here (tests).
    std::function<void(Work work, Reply done)> offload = [](Work work, Reply done) {
      done(work());
    };
    // The storage certificates are added to, listed from and removed from:
    // the one the daemon opened (certstore::openStorage). Empty: the state
    // directory of the running configuration (tests).
    std::function<certstore::StoragePtr()> storage;
    // Every path under /v1/sites (admin/sites_api.h: SitesApi::handle);
    // empty: those paths answer 404.
    std::function<void(const AdminRequest&, Reply)> sites;
  };

  explicit AdminApi(Hooks hooks) : hooks_(std::move(hooks)) {}

  // Answers `request` through `reply`, at once or after offloaded work.
  void handle(const AdminRequest& request, Reply reply);
  // The same, waiting for the answer: only with an offload that runs inline.
  AdminResponse handle(const AdminRequest& request);

 private:
  AdminResponse answer(const conf::Config& config, const AdminRequest& request);
  // The store of hooks.storage, on the control loop (the result may be
  // handed to offloaded work).
  certstore::CertificateStore store(const conf::Config& config) const;
  static AdminResponse list(const certstore::CertificateStore& store, const conf::Config& config,
                            const certstore::Selector& served, bool text, time_t now);
  static AdminResponse show(const certstore::CertificateStore& store, const conf::Config& config,
                            const certstore::Selector& served, const std::string& name, bool text,
                            time_t now);
  static AdminResponse requestCsr(const certstore::CertificateStore& store,
                                  const conf::Config& config, const std::string& name,
                                  const std::string& body, bool text, time_t now);
  // `requestOnly`: set when it removes a pending request (not served).
  static AdminResponse remove(const certstore::CertificateStore& store, const conf::Config& config,
                              const certstore::Selector& served, const std::string& name, bool text,
                              bool& requestOnly);
  // Validates and writes an upload; what was validated goes to `validated`.
  static AdminResponse put(const certstore::CertificateStore& store, const conf::Config& config,
                           const std::string& name, const std::string& body, bool text, time_t now,
                           certstore::CredentialsPtr& validated);
  AdminResponse which(const conf::Config& config, const std::string& query, bool text);
  AdminResponse acme(std::string_view path, const AdminRequest& request);

  Hooks hooks_;
};

// An error answer: `{"error": MESSAGE}` with `status`, or with the status
// of `error`'s kind (kInvalid 422, kNotFound 404, kConflict and kInUse 409,
// kUnavailable 503, kFailed 500).
AdminResponse adminError(int status, const std::string& message);
AdminResponse adminError(const Error& error);

// A certificate upload: the body of PUT /v1/certificates/NAME.
struct CertificateUpload {
  std::string chain;  // PEM text
  std::string key;    // PEM text
  bool replace = false;
  std::string chainSource = "chain";  // what messages call the inputs
  std::string keySource = "key";
  // No `key`: the certificate completes the pending request of that name.
  bool completesRequest = false;
};

// The upload a body holds (nlohmann/json), or the error a 400 gives, which
// says what and where: malformed JSON (at which byte, never quoting the
// body, which holds a private key), not an object, a repeated or unknown
// field, a field of the wrong type, `chain` or `key` missing.
Result<CertificateUpload> parseCertificateUpload(std::string_view body);

// "%41b" -> "Ab", "+" -> " "; an Error on a bad escape.
Result<std::string> percentDecode(std::string_view text);

}  // namespace tlsedge::admin
