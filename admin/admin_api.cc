#include "admin/admin_api.h"

#include <algorithm>
#include <set>

#include "acme/revocation.h"
#include "admin/cert_text.h"
#include "admin/console.h"
#include "base/log.h"
#include "certstore/json.h"
#include "certstore/manage.h"
#include "certstore/store.h"

namespace tlsedge::admin {
namespace {

constexpr std::string_view kCertificates = "/v1/certificates";
constexpr std::string_view kWhich = "/v1/which";
constexpr std::string_view kAcme = "/v1/acme";
constexpr std::string_view kSites = "/v1/sites";  // admin/sites_api.h

AdminResponse ok(int status, bool text, std::string textBody, std::string jsonBody) {
  AdminResponse r;
  r.status = status;
  if (text) {
    r.contentType = "text/plain; charset=utf-8";
    r.body = std::move(textBody);
  } else {
    r.body = std::move(jsonBody);
  }
  return r;
}

AdminResponse notAllowed(const char* allow) {
  AdminResponse r = adminError(405, std::string("method not allowed; allowed: ") + allow);
  r.allow = allow;
  return r;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of `key` in a query string ("a=1&host=x"); empty if absent.
Result<std::string> queryValue(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != key) continue;
    return percentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
  }
  return std::string();
}

// The reason in one of nlohmann's exception texts: without the
// "[json.exception.parse_error.101] parse error at line 1, column 9: "
// prefix, and without what it last read (the body holds a private key).
std::string jsonErrorReason(std::string_view what) {
  if (what.starts_with("[json.exception.")) {
    what.remove_prefix(std::min(what.size(), what.find("] ") + 2));
  }
  if (what.starts_with("parse error")) {
    what.remove_prefix(std::min(what.size(), what.find(": ") + 2));
  }
  return std::string(what.substr(0, what.find("; last read:")));
}

}  // namespace

Result<CertificateUpload> parseCertificateUpload(std::string_view body) {
  constexpr std::string_view kFields = "(fields: chain, key, replace, chain_source, key_source)";
  // The parse keeps the last of a repeated key: its callback sees each key
  // of the object itself (depth 1) and notes the first one seen twice.
  std::set<std::string, std::less<>> seen;
  std::string repeated;
  auto noteKeys = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string() &&
        !seen.insert(parsed.get<std::string>()).second && repeated.empty()) {
      repeated = parsed.get<std::string>();
    }
    return true;
  };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(body, noteKeys);
  } catch (const nlohmann::json::parse_error& e) {
    return makeError("request body: bad JSON at byte " + std::to_string(e.byte) + ": " +
                     jsonErrorReason(e.what()));
  } catch (const nlohmann::json::exception& e) {
    return makeError("request body: bad JSON: " + jsonErrorReason(e.what()));
  }
  if (!json.is_object()) {
    return makeError("request body: not a JSON object " + std::string(kFields));
  }
  if (!repeated.empty()) return makeError("request body: repeated field `" + repeated + "`");
  CertificateUpload upload;
  for (const auto& [field, value] : json.items()) {
    if (field == "replace") {
      if (!value.is_boolean()) return makeError("request body: `replace` must be true or false");
      upload.replace = value.get<bool>();
      continue;
    }
    std::string* out = field == "chain"          ? &upload.chain
                       : field == "key"          ? &upload.key
                       : field == "chain_source" ? &upload.chainSource
                       : field == "key_source"   ? &upload.keySource
                                                 : nullptr;
    if (out == nullptr) {
      return makeError("request body: unknown field `" + field + "` " + std::string(kFields));
    }
    if (!value.is_string()) return makeError("request body: `" + field + "` must be a string");
    *out = value.get<std::string>();
  }
  if (!json.contains("chain")) {
    return makeError("request body: `chain` (PEM text) is required");
  }
  upload.completesRequest = !json.contains("key");
  if (upload.completesRequest && (upload.replace || json.contains("key_source"))) {
    return makeError(
        "request body: without `key` (completing a pending request), no `replace` or "
        "`key_source`");
  }
  return upload;
}

int httpStatus(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalid:
      return 422;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kConflict:
    case ErrorKind::kInUse:
      return 409;
    case ErrorKind::kUnavailable:
      return 503;
    case ErrorKind::kFailed:
      break;
  }
  return 500;
}

AdminResponse adminError(const Error& error) {
  return adminError(httpStatus(error.kind), error.message);
}

AdminResponse adminError(int status, const std::string& message) {
  AdminResponse r;
  r.status = status;
  r.body = certstore::jsonText(nlohmann::ordered_json{{"error", message}});
  return r;
}

Result<std::string> percentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] != '%') {
      out.push_back(text[i]);
    } else {
      const int hi = i + 2 < text.size() ? hexValue(text[i + 1]) : -1;
      const int lo = hi >= 0 ? hexValue(text[i + 2]) : -1;
      if (lo < 0) return makeError("bad percent escape in `" + std::string(text) + "`");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return out;
}

AdminResponse AdminApi::handle(const AdminRequest& request) {
  AdminResponse out;
  handle(request, [&out](AdminResponse r) { out = std::move(r); });
  return out;
}

void AdminApi::handle(const AdminRequest& request, Reply reply) {
  // Every certificate operation (list, show, add or replace, rm) runs off
  // the control loop: it reads or writes the storage, which may be remote
  // (fleet mode). The config and the snapshot being served are taken here
  // as they are now (both immutable); the hot swap is told on the loop.
  conf::ConfigPtr config = hooks_.config();
  const std::string_view target = request.target;
  const std::string_view path = target.substr(0, target.find('?'));
  if (hooks_.sites && (path == kSites || path.starts_with(std::string(kSites) + "/"))) {
    return hooks_.sites(request, std::move(reply));
  }
  const bool whole = path == kCertificates || path == std::string(kCertificates) + "/";
  const bool one =
      !whole && path.substr(0, kCertificates.size() + 1) == std::string(kCertificates) + "/";
  const std::string& method = request.method;
  if ((whole && method == "GET") ||
      (one && (method == "GET" || method == "DELETE" || method == "PUT" || method == "POST"))) {
    auto name = percentDecode(path.substr(std::min(path.size(), kCertificates.size() + 1)));
    if (!name.ok()) return reply(adminError(400, name.error().message));
    if (name->find('/') != std::string::npos) return reply(adminError(404, "no such path"));
    const bool text = request.text;
    const time_t now = hooks_.now();
    auto served = hooks_.selector();
    const certstore::CertificateStore store = this->store(*config);
    if (whole) {
      return hooks_.offload(
          [store, config, served, text, now] { return list(store, *config, *served, text, now); },
          std::move(reply));
    }
    if (method == "GET") {
      return hooks_.offload([store, config, served, name = *name, text,
                             now] { return show(store, *config, *served, name, text, now); },
                            std::move(reply));
    }
    if (method == "POST") {  // a pending request: nothing is served yet
      return hooks_.offload([store, config, name = *name, body = request.body, text,
                             now] { return requestCsr(store, *config, name, body, text, now); },
                            std::move(reply));
    }
    // What an add validated, handed from the pool to the hot swap; whether
    // a DELETE removed only a pending request (nothing served changes).
    auto validated = std::make_shared<certstore::CredentialsPtr>();
    auto requestOnly = std::make_shared<bool>(false);
    Work work = [store, config, served, name = *name, text, requestOnly] {
      return remove(store, *config, *served, name, text, *requestOnly);
    };
    if (method == "PUT") {
      work = [store, config, name = *name, body = request.body, text, now, validated] {
        return put(store, *config, name, body, text, now, *validated);
      };
    }
    return hooks_.offload(std::move(work), [this, name = *name, validated, requestOnly,
                                            reply = std::move(reply)](AdminResponse r) {
      if (r.status < 300 && !*requestOnly) {
        if (*validated == nullptr) log::info("admin: certificate " + name + " removed");
        hooks_.storeChanged(name, *validated);
      }
      reply(std::move(r));
    });
  }
  reply(answer(*config, request));
}

AdminResponse AdminApi::answer(const conf::Config& config, const AdminRequest& request) {
  std::string_view target = request.target;
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
  const std::string& method = request.method;

  if (auto page = consoleAnswer(method, path)) return std::move(*page);
  if (path == kCertificates || path == std::string(kCertificates) + "/") {
    return notAllowed("GET");  // GET is offloaded by handle()
  }
  if (path.substr(0, kCertificates.size() + 1) == std::string(kCertificates) + "/") {
    auto name = percentDecode(path.substr(kCertificates.size() + 1));
    if (!name.ok()) return adminError(400, name.error().message);
    if (name->find('/') != std::string::npos) return adminError(404, "no such path");
    return notAllowed("GET, PUT, POST, DELETE");  // those are offloaded by handle()
  }
  if (path == kWhich) {
    if (method != "GET") return notAllowed("GET");
    return which(config, std::string(query), request.text);
  }
  if (path == kAcme || path.substr(0, kAcme.size() + 1) == std::string(kAcme) + "/") {
    return acme(path.substr(kAcme.size()), request);
  }
  return adminError(404, "no such path: " + std::string(path) +
                             " (endpoints: /v1/certificates[/NAME], /v1/which?host=HOST, "
                             "/v1/acme, /v1/acme/SITE/renew|revoke; the web console: /console/)");
}

certstore::CertificateStore AdminApi::store(const conf::Config& config) const {
  return hooks_.storage ? certstore::CertificateStore(hooks_.storage())
                        : certstore::CertificateStore::local(config);
}

AdminResponse AdminApi::list(const certstore::CertificateStore& store, const conf::Config& config,
                             const certstore::Selector& served, bool text, time_t now) {
  const auto users = certstore::CertificateUsers::fromSnapshot(config, served);
  auto entries = certstore::listCertificates(store, config, users, now);
  if (!entries.ok()) return adminError(500, entries.error().message);
  return ok(200, text, listText(*entries, store.directory()), certstore::toJson(*entries));
}

AdminResponse AdminApi::show(const certstore::CertificateStore& store, const conf::Config& config,
                             const certstore::Selector& served, const std::string& name, bool text,
                             time_t now) {
  const auto users = certstore::CertificateUsers::fromSnapshot(config, served);
  auto shown = certstore::showCertificate(store, config, users, name, now);
  if (!shown.ok()) {
    return adminError(shown.error());
  }
  return ok(200, text, showText(*shown), certstore::toJson(*shown));
}

AdminResponse AdminApi::put(const certstore::CertificateStore& store, const conf::Config& config,
                            const std::string& name, const std::string& body, bool text, time_t now,
                            certstore::CredentialsPtr& validated) {
  auto upload = parseCertificateUpload(body);
  if (!upload.ok()) return adminError(400, upload.error().message);
  auto added = upload->completesRequest
                   ? certstore::completeCertificatePem(store, config, name, upload->chain, now,
                                                       upload->chainSource)
                   : certstore::addCertificatePem(store, config, name, upload->chain, upload->key,
                                                  upload->replace, now, upload->chainSource,
                                                  upload->keySource);
  if (!added.ok()) {
    log::warning("admin: certificate " + name + " refused: " + added.error().message);
    return adminError(added.error());
  }
  log::info("admin: certificate " + name + (added->replaced ? " replaced" : " added") +
            " (serial " + added->serialHex + ")");
  validated = added->credentials;
  return ok(added->replaced ? 200 : 201, text, addText(*added), certstore::toJson(*added));
}

AdminResponse AdminApi::requestCsr(const certstore::CertificateStore& store,
                                   const conf::Config& config, const std::string& name,
                                   const std::string& body, bool text, time_t now) {
  const auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  const char* kShape =
      "request body: {\"hosts\": [HOST, ...], \"key_type\": TYPE, \"subject\": \"/K=V/...\"} "
      "expected (key_type and subject optional)";
  if (!json.is_object()) return adminError(400, kShape);
  std::vector<std::string> hosts;
  std::string keyType = "ecdsa-p256";
  std::string subject;
  for (const auto& [field, value] : json.items()) {
    if (field == "hosts" && value.is_array()) {
      for (const auto& host : value) {
        if (!host.is_string()) return adminError(400, kShape);
        hosts.push_back(host.get<std::string>());
      }
    } else if (field == "key_type" && value.is_string()) {
      keyType = value.get<std::string>();
    } else if (field == "subject" && value.is_string()) {
      subject = value.get<std::string>();
    } else {
      return adminError(400, kShape);
    }
  }
  auto requested = certstore::requestCertificate(store, config, name, hosts, keyType, now, subject);
  if (!requested.ok()) {
    log::warning("admin: certificate request " + name + " refused: " + requested.error().message);
    return adminError(requested.error());
  }
  log::info("admin: certificate request " + name + " made (" + requested->keyType + " key kept)");
  return ok(201, text, requestText(*requested), certstore::toJson(*requested));
}

AdminResponse AdminApi::remove(const certstore::CertificateStore& store, const conf::Config& config,
                               const certstore::Selector& served, const std::string& name,
                               bool text, bool& requestOnly) {
  auto pending = store.pendingContains(name);  // what removeCertificate then removes alone
  requestOnly = pending.ok() && *pending;
  const auto users = certstore::CertificateUsers::fromSnapshot(config, served);
  if (Status removed = certstore::removeCertificate(store, config, users, name); !removed.ok()) {
    return adminError(removed.error());
  }
  return ok(200, text, removedText(name), removedJson(name));
}

AdminResponse AdminApi::which(const conf::Config& config, const std::string& query, bool text) {
  auto host = queryValue(query, "host");
  if (!host.ok()) return adminError(400, host.error().message);
  if (host->empty()) return adminError(400, "which: the `host` query parameter is required");
  auto chosen = certstore::whichFromSelector(config, *hooks_.selector(), *host);
  if (!chosen.ok()) return adminError(404, chosen.error().message);
  return ok(200, text, whichText(*chosen), certstore::toJson(*chosen));
}

// `rest`: the path after /v1/acme ("", "/", "/SITE/renew", "/SITE/revoke").
AdminResponse AdminApi::acme(std::string_view rest, const AdminRequest& request) {
  const bool text = request.text;
  if (!hooks_.acmeStatus || !hooks_.acmeRenew || !hooks_.acmeRevoke) {
    return adminError(503, "no ACME manager runs");
  }
  if (rest.empty() || rest == "/") {
    if (request.method != "GET") return notAllowed("GET");
    const auto sites = hooks_.acmeStatus();
    return ok(200, text, acme::statusText(sites, hooks_.now()), acme::statusJson(sites));
  }
  const size_t slash = rest.rfind('/');
  const std::string_view action = rest.substr(slash + 1);
  if (slash == 0 || (action != "renew" && action != "revoke")) {
    return adminError(404, "no such path: /v1/acme" + std::string(rest) +
                               " (endpoints: /v1/acme, /v1/acme/SITE/renew, /v1/acme/SITE/revoke)");
  }
  auto site = percentDecode(rest.substr(1, slash - 1));
  if (!site.ok()) return adminError(400, site.error().message);
  if (site->empty() || site->find('/') != std::string::npos) {
    return adminError(404, "no such path");
  }
  if (request.method != "POST") return notAllowed("POST");
  std::optional<int> reason;
  if (action == "revoke" && !request.body.empty()) {
    auto body = nlohmann::json::parse(request.body, nullptr, false);
    auto it = body.is_object() ? body.find("reason") : body.end();
    if (!body.is_object() || (it != body.end() && !it->is_string() && !it->is_number_integer())) {
      return adminError(400, "revoke: the body must be empty or {\"reason\": CODE or NAME}");
    }
    if (it != body.end()) {
      // An integer as written (get<int>() would wrap 4294967297 to 1).
      auto parsed =
          acme::parseRevocationReason(it->is_string() ? it->get<std::string>() : it->dump());
      if (!parsed.ok()) return adminError(400, parsed.error().message);
      reason = *parsed;
    }
  }
  Status started = action == "renew" ? hooks_.acmeRenew(*site) : hooks_.acmeRevoke(*site, reason);
  if (!started.ok()) return adminError(started.error());
  if (action == "renew") {
    const std::string message = "renewal of site `" + *site + "` started";
    return ok(202, text, message + "; `tlsedge acme status` shows how it went\n",
              certstore::jsonText(nlohmann::ordered_json{{"site", *site}, {"renewal", "started"}}));
  }
  const std::string message =
      "revocation of site `" + *site +
      "`'s certificate started; a new certificate is ordered right after it, and the revoked "
      "one serves until the new one arrives; `tlsedge acme status` shows how it went";
  return ok(202, text, message + "\n",
            certstore::jsonText(nlohmann::ordered_json{
                {"site", *site}, {"revocation", "started"}, {"message", message}}));
}

}  // namespace tlsedge::admin
