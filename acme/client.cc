#include "acme/client.h"

#include <arpa/inet.h>
#include <openssl/mem.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "acme/chain.h"
#include "acme/dns_hook.h"
#include "acme/eab.h"
#include "acme/problem.h"
#include "acme/schedule.h"
#include "base/log.h"
#include "certstore/files.h"
#include "certstore/json.h"
#include "net/loop.h"

namespace tlsedge::acme {
namespace {

// A rejected nonce is retried with the fresh one the error carries. 20:
// at Pebble's 50 % rejection (a test) 21 rejections in a row are 1 in 2M per
// request; 10 left about 1 issuance in 150 failing by chance.
constexpr int kMaxNonceRetries = 20;
constexpr const char* kJoseJson = "application/jose+json";
constexpr const char* kPemChain = "application/pem-certificate-chain";

using Json = nlohmann::json;

Json parseJson(const std::string& body) { return Json::parse(body, nullptr, false); }

std::string stringMember(const Json& j, const char* name) {
  if (!j.is_object()) return {};
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool isIpLiteral(const std::string& host) {
  uint8_t buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// The directory's meta.externalAccountRequired (anything but `true`: no).
bool requiresExternalAccount(const Json& directory) {
  if (!directory.is_object()) return false;
  auto meta = directory.find("meta");
  if (meta == directory.end() || !meta->is_object()) return false;
  auto required = meta->find("externalAccountRequired");
  return required != meta->end() && required->is_boolean() && required->get<bool>();
}

// The reason an authorization or order failed: its challenge's or its own
// problem document.
// The problem an authorization or order failed with (its own `error`, else
// its first challenge's), and the type of that challenge ("" for its own).
std::optional<std::pair<std::string, Problem>> failureProblem(const Json& object) {
  if (auto it = object.find("error"); it != object.end()) {
    if (auto p = parseProblem(certstore::jsonText(*it)))
      return std::pair{std::string(), std::move(*p)};
  }
  if (auto it = object.find("challenges"); it != object.end() && it->is_array()) {
    for (const auto& c : *it) {
      if (auto e = c.find("error"); e != c.end()) {
        if (auto p = parseProblem(certstore::jsonText(*e)))
          return std::pair{stringMember(c, "type"), *p};
      }
    }
  }
  return std::nullopt;
}

std::string failureDetail(const Json& object) {
  auto found = failureProblem(object);
  if (!found) return "no detail given";
  const auto& [challenge, problem] = *found;
  return challenge.empty() ? problem.text() : challenge + ": " + problem.text();
}

}  // namespace

enum class Client::Step {
  kDirectory,
  kAccount,
  kRevoke,
  kResume,
  kNewOrder,
  kAuthorization,  // answer, then poll, the authorizations (see fetchAuthorization)
  kFinalize,
  kPollOrder,
  kDownload,
};

struct Client::Order {
  OrderRequest request;
  Done done;
  uint64_t seq = 0;
  Step step = Step::kDirectory;
  std::string url;  // the order's
  std::string finalizeUrl;
  std::string certificateUrl;
  std::vector<std::string> authorizations;
  size_t next = 0;                         // authorization being worked on
  std::vector<bool> valid;                 // per authorization
  bool polling = false;                    // past the first pass (which answers the challenges)
  std::chrono::milliseconds passDelay{0};  // before the next polling pass
  int polls = 0;                       // polling passes over the authorizations, or of the order
  std::vector<std::string> tokens;     // http-01, in the ChallengeStore
  std::vector<std::string> alpnHosts;  // tls-alpn-01 certificates in the ChallengeStore
  std::vector<std::pair<std::string, std::string>> dnsRecords;  // set by the hook: name, value
  std::optional<Csr> csr;
  OrderFailure failure;  // what the CA said on the failed request, if any
};

std::string caId(const std::string& directoryUrl) {
  std::string_view rest = directoryUrl;
  if (size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
    rest = rest.substr(scheme + 3);
  }
  std::string out;
  for (char c : rest) {
    out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ? c : '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "ca" : out;
}

Client::Client(uv_loop_t* loop, ChallengeStore& challenges, ClientOptions options)
    : loop_(loop),
      challenges_(challenges),
      options_(std::move(options)),
      store_(options_.storage),
      lane_(loop) {}

Result<std::unique_ptr<Client>> Client::create(uv_loop_t* loop, ChallengeStore& challenges,
                                               ClientOptions options) {
  std::unique_ptr<Client> client(new Client(loop, challenges, std::move(options)));
  http::HttpClientOptions http;
  http.roots = std::move(client->options_.roots);
  http.timeout = client->options_.requestTimeout;
  http.userAgent = "tlsedge-acme";
  auto made = http::HttpClient::create(loop, std::move(http));
  if (!made) return makeError("acme: " + made.error().message);
  client->http_ = std::move(*made);
  client->timer_ = new uv_timer_t;
  uv_timer_init(loop, client->timer_);
  client->timer_->data = client.get();
  return client;
}

Client::~Client() {
  cancel();
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(timer_), timer_);
}

void Client::order(OrderRequest request, Done done) {
  auto o = std::make_unique<Order>();
  o->request = std::move(request);
  o->done = std::move(done);
  o->seq = ++orderSeq_;
  queue_.push_back(std::move(o));
  if (current_ == nullptr) startNext();
}

void Client::cancel() {
  http_->cancelAll();
  uv_timer_stop(timer_);
  if (current_ != nullptr) clearChallenges(*current_);
  current_.reset();
  queue_.clear();
}

void Client::startNext() {
  if (current_ != nullptr || queue_.empty()) return;
  current_ = std::move(queue_.front());
  queue_.pop_front();
  current_->step = newOrderUrl_.empty() ? Step::kDirectory
                   : kid_.empty()       ? Step::kAccount
                                        : afterAccount();
  log::info("acme: ordering certificate `" + current_->request.certificateName + "` for site `" +
            current_->request.site + "` from " + options_.directoryUrl);
  schedule(std::chrono::milliseconds(0));  // never inside order()
}

void Client::schedule(std::chrono::milliseconds delay) {
  uv_timer_start(
      timer_, [](uv_timer_t* t) noexcept { static_cast<Client*>(t->data)->advance(); },
      static_cast<uint64_t>(delay.count()), 0);
}

void Client::advance() {
  if (current_ == nullptr) return;
  switch (current_->step) {
    case Step::kDirectory:
      return loadDirectory();
    case Step::kAccount:
      return ensureAccount();
    case Step::kRevoke:
      return revoke();
    case Step::kResume:
      return resumeOrder();
    case Step::kNewOrder:
      return newOrder();
    case Step::kAuthorization:
      return fetchAuthorization();
    case Step::kFinalize:
      return finalize();
    case Step::kPollOrder:
      return pollOrder();
    case Step::kDownload:
      return download();
  }
}

void Client::fail(const std::string& why) {
  endOrder(makeError("acme: certificate `" + current_->request.certificateName + "` for site `" +
                     current_->request.site + "`: " + why));
}

void Client::succeed() { endOrder(Ok{}); }

void Client::endOrder(Status status) {
  std::unique_ptr<Order> ended = std::move(current_);
  clearChallenges(*ended);
  startNext();  // schedules it: nothing of the next order runs before `done`
  lastFailure_ = ended->failure;
  if (ended->done) ended->done(std::move(status));
}

void Client::clearChallenges(Order& o) {
  for (const auto& token : o.tokens) challenges_.remove(token);
  for (const auto& host : o.alpnHosts) challenges_.removeTlsAlpn(host);
  for (const auto& [name, value] : o.dnsRecords) {
    // Runs to its end even if this Client is gone; only its failure is logged.
    runCommand(loop_, {options_.dnsHook, "clear", name, value}, options_.hookTimeout,
               [name = name](Status s) {
                 if (!s.ok())
                   log::warning("acme: dns_hook clear " + name + ": " + s.error().message);
               });
  }
  o.tokens.clear();
  o.alpnHosts.clear();
  o.dnsRecords.clear();
}

std::chrono::milliseconds Client::pollDelay(const http::HttpResponse* response) {
  if (response != nullptr) {
    // Seconds or an HTTP date (RFC 9110 section 10.2.3), as for failures;
    // at most 10 minutes between polls.
    if (const std::string* after = response->find("Retry-After")) {
      if (auto seconds = parseRetryAfter(*after, ::time(nullptr))) {
        return std::chrono::seconds(std::min<int64_t>(*seconds, 600));
      }
    }
  }
  auto delay = options_.firstPoll * (1 << std::min(current_->polls, 10));
  return std::min(delay, options_.maxPoll);
}

Client::ResponseCallback Client::guarded(std::function<void(http::HttpResponse&)> next) {
  const uint64_t seq = current_->seq;
  return [this, seq, next = std::move(next)](Response r) {
    if (current_ == nullptr || current_->seq != seq) return;  // cancelled meanwhile
    if (!r) {
      fail(r.error().message);
      return;
    }
    next(*r);
  };
}

// --- the nonce pool and signed requests --------------------------------------

void Client::takeNonce(const http::HttpResponse& response) {
  if (const std::string* nonce = response.find("Replay-Nonce"); nonce && !nonce->empty()) {
    nonces_.push_back(*nonce);
  }
}

void Client::post(const std::string& url, const std::string& payload, bool useJwk,
                  ResponseCallback done, int attempt) {
  if (nonces_.empty()) {
    http::HttpRequest head{"HEAD", newNonceUrl_, {}, {}};
    http_->send(std::move(head),
                [this, url, payload, useJwk, done = std::move(done), attempt](Response r) mutable {
                  if (!r) return done(std::move(r));
                  takeNonce(*r);
                  if (nonces_.empty())
                    return done(makeError("HEAD " + newNonceUrl_ + ": no Replay-Nonce"));
                  post(url, payload, useJwk, std::move(done), attempt);
                });
    return;
  }
  std::string nonce = std::move(nonces_.back());
  nonces_.pop_back();
  auto jws = signJws(*accountKey_, useJwk ? std::string() : kid_, nonce, url, payload);
  if (!jws) return done(jws.error());
  http::HttpRequest request{"POST", url, {{"Content-Type", kJoseJson}}, std::move(*jws)};
  if (payload.empty()) request.headers.push_back({"Accept", kPemChain + std::string(", */*")});
  http_->send(std::move(request), [this, url, payload, useJwk, done = std::move(done),
                                   attempt](Response r) mutable {
    if (!r) return done(std::move(r));
    takeNonce(*r);
    if (r->status < 400) return done(std::move(r));
    auto problem = parseProblem(r->body);
    if (problem && problem->is("badNonce") && attempt < kMaxNonceRetries) {
      ++badNonceRetries_;  // the answer carried a fresh nonce: try again with it
      log::debug("acme: badNonce from " + url + ", retrying");
      return post(url, payload, useJwk, std::move(done), attempt + 1);
    }
    if (current_ != nullptr) {  // the order that sent it: one at a time
      OrderFailure& failure = current_->failure;
      if (const std::string* after = r->find("Retry-After")) {
        failure.retryAfterSeconds = parseRetryAfter(*after, ::time(nullptr));
      }
      failure.rateLimited = problem && problem->is("rateLimited");
      if (problem) failure.problemKind = problem->kind();
    }
    Error error = makeError("POST " + url + ": " +
                            (problem ? problem->text() : "HTTP " + std::to_string(r->status)));
    if (problem) error.code = problem->kind();  // RFC 8555's short type, or "other"
    done(std::move(error));
  });
}

// --- the steps -----------------------------------------------------------------

void Client::loadDirectory() {
  http::HttpRequest request{"GET", options_.directoryUrl, {}, {}};
  http_->send(std::move(request), guarded([this](http::HttpResponse& r) {
                Json dir = parseJson(r.body);
                newNonceUrl_ = stringMember(dir, "newNonce");
                newAccountUrl_ = stringMember(dir, "newAccount");
                newOrderUrl_ = stringMember(dir, "newOrder");
                revokeCertUrl_ = stringMember(dir, "revokeCert");
                externalAccountRequired_ = requiresExternalAccount(dir);
                if (r.status != 200 || newNonceUrl_.empty() || newAccountUrl_.empty() ||
                    newOrderUrl_.empty()) {
                  newOrderUrl_.clear();
                  return fail("directory " + options_.directoryUrl + ": HTTP " +
                              std::to_string(r.status) +
                              ", not an ACME directory (newNonce, newAccount, newOrder)");
                }
                current_->step = Step::kAccount;
                advance();
              }));
}

namespace {

// The account key's PEM in `storage`, made and stored when there is none
// (`created`). One account per CA for the whole fleet: created only where
// none is, so two nodes starting at once end up with the one that won.
// Blocking: on the lane.
Result<std::pair<std::string, bool>> loadOrCreateAccountKey(certstore::Storage& storage,
                                                            const std::string& key) {
  auto pem = storage.load(key);
  if (pem) return std::pair{std::move(*pem), false};
  if (pem.error().kind != ErrorKind::kNotFound) return pem.error();
  auto made = AccountKey::generate();
  if (!made) return made.error();
  auto pemOut = made->toPem();
  if (!pemOut) return pemOut.error();
  Status stored = storage.create(key, *pemOut, certstore::Storage::Secrecy::kSecret);
  if (stored.ok()) return std::pair{std::move(*pemOut), true};
  if (stored.error().kind != ErrorKind::kConflict) return stored.error();
  pem = storage.load(key);  // another node's came first
  if (!pem) return pem.error();
  return std::pair{std::move(*pem), false};
}

}  // namespace

void Client::ensureAccount() {
  if (accountKey_) return registerAccount();
  const std::string key = accountDirectory() + "/account.key";
  lane_.run<Result<std::pair<std::string, bool>>>(
      [storage = options_.storage, key] { return loadOrCreateAccountKey(*storage, key); },
      [this, seq = current_->seq, key](Result<std::pair<std::string, bool>> pem) {
        if (current_ == nullptr || current_->seq != seq) return;  // cancelled meanwhile
        if (!pem) return fail(pem.error().message);
        const std::string keyPath = options_.storage->describe(key);
        if (pem->second) log::info("acme: new account key in " + keyPath);
        auto made = AccountKey::fromPem(pem->first, keyPath);
        if (!made) return fail(made.error().message);
        accountKey_ = std::move(*made);
        registerAccount();
      });
}

std::string Client::accountDirectory() const { return "acme/" + caId(options_.directoryUrl); }

void Client::registerAccount() {
  Json payload = {{"termsOfServiceAgreed", true}};
  if (!options_.email.empty()) payload["contact"] = Json::array({"mailto:" + options_.email});
  if (options_.eab) {
    auto binding = externalAccountBinding(*options_.eab, accountKey_->jwk(), newAccountUrl_);
    if (!binding) return fail(binding.error().message);
    payload["externalAccountBinding"] = parseJson(*binding);
  } else if (externalAccountRequired_) {
    return fail(
        "the CA requires External Account Binding (its directory's "
        "meta.externalAccountRequired): set acme.eab { kid, hmac_key } to the values "
        "it gave for your account");
  }
  post(newAccountUrl_, certstore::jsonText(payload), /*useJwk=*/true,
       guarded([this](http::HttpResponse& r) {
         const std::string* location = r.find("Location");
         if (location == nullptr || location->empty()) {
           return fail("newAccount: HTTP " + std::to_string(r.status) + " without Location");
         }
         kid_ = *location;
         Json account = {{"url", kid_}, {"directory", options_.directoryUrl}};
         if (!options_.email.empty()) account["contact"] = "mailto:" + options_.email;
         lane_.run<Status>(
             [storage = options_.storage, key = accountDirectory() + "/account.json",
              text = certstore::jsonText(account, 2) + "\n"] {
               return storage->store(key, text, certstore::Storage::Secrecy::kSecret);
             },
             [](Status w) {
               if (!w.ok()) log::warning("acme: " + w.error().message);  // works without it
             });
         log::info("acme: account " + kid_);
         current_->step = afterAccount();
         advance();
       }));
}

void Client::newOrder() {
  Json identifiers = Json::array();
  for (const auto& host : current_->request.hosts) {
    identifiers.push_back({{"type", isIpLiteral(host) ? "ip" : "dns"}, {"value", host}});
  }
  Json payload = {{"identifiers", identifiers}};
  if (!current_->request.replaces.empty()) payload["replaces"] = current_->request.replaces;
  post(newOrderUrl_, certstore::jsonText(payload), false, guarded([this](http::HttpResponse& r) {
         const std::string* location = r.find("Location");
         if (location == nullptr || !adoptOrder(r.body, *location)) {
           return fail("newOrder: HTTP " + std::to_string(r.status) + ": not an order object");
         }
         log::info("acme: order " + current_->url + " placed for site `" + current_->request.site +
                   "`");
         if (current_->request.placed) current_->request.placed(current_->url);
         current_->step = Step::kAuthorization;
         current_->next = 0;
         advance();
       }));
}

Client::Step Client::afterAccount() const {
  if (!current_->request.revokeDer.empty()) return Step::kRevoke;
  if (!current_->request.resumeUrl.empty()) return Step::kResume;
  return Step::kNewOrder;
}

bool Client::adoptOrder(const std::string& body, const std::string& url) {
  Json order = parseJson(body);
  Order& o = *current_;
  o.finalizeUrl = stringMember(order, "finalize");
  if (o.finalizeUrl.empty() || !order.contains("authorizations") ||
      !order["authorizations"].is_array()) {
    return false;
  }
  o.url = url;
  o.authorizations.clear();
  for (const auto& a : order["authorizations"]) {
    if (a.is_string()) o.authorizations.push_back(a.get<std::string>());
  }
  return true;
}

// The order placed before a restart: pending goes on with its
// authorizations, ready with finalize; anything else is ordered anew.
void Client::resumeOrder() {
  const std::string url = current_->request.resumeUrl;
  current_->request.resumeUrl.clear();
  const uint64_t seq = current_->seq;
  post(url, "", false, [this, seq, url](Response r) {
    if (current_ == nullptr || current_->seq != seq) return;
    const std::string status = r ? stringMember(parseJson(r->body), "status") : std::string();
    if ((status == "pending" || status == "ready") && adoptOrder(r->body, url)) {
      log::info("acme: resuming order " + url + " (" + status + ")");
      current_->step = status == "pending" ? Step::kAuthorization : Step::kFinalize;
      current_->next = 0;
      return advance();
    }
    log::info("acme: order " + url + " cannot be resumed (" +
              (r ? (status.empty() ? "unreadable" : status) : r.error().message) +
              "): ordering anew");
    current_->failure = {};  // that answer's Retry-After is not the order's
    current_->step = Step::kNewOrder;
    advance();
  });
}

// RFC 8555 section 7.6, signed with the account key (kid). A certificate
// the CA says is already revoked counts as revoked.
void Client::revoke() {
  if (revokeCertUrl_.empty()) return fail("the CA's directory has no revokeCert");
  Json payload = {{"certificate", base64url(current_->request.revokeDer)}};
  if (current_->request.revokeReason) payload["reason"] = *current_->request.revokeReason;
  current_->request.revokeDer.clear();
  const uint64_t seq = current_->seq;
  post(revokeCertUrl_, certstore::jsonText(payload), false, [this, seq](Response r) {
    if (current_ == nullptr || current_->seq != seq) return;
    if (!r && r.error().code != "alreadyRevoked") {
      return fail("revocation refused: " + r.error().message);
    }
    log::notice("acme: certificate `" + current_->request.certificateName + "` of site `" +
                current_->request.site + "` revoked" +
                (r ? std::string() : " (already: " + r.error().message + ")") +
                "; it serves until the new one arrives");
    if (current_->request.revoked) current_->request.revoked();
    current_->failure = {};
    current_->step = afterAccount();
    advance();
  });
}

// Two passes over the authorizations: the first answers every pending
// challenge (so the CA validates them all at once), the next ones
// poll those not yet valid, waiting between passes.
void Client::fetchAuthorization() {
  Order& o = *current_;
  o.valid.resize(o.authorizations.size());
  while (o.next < o.authorizations.size() && o.valid[o.next]) ++o.next;
  if (o.next >= o.authorizations.size()) {
    if (std::all_of(o.valid.begin(), o.valid.end(), [](bool v) { return v; })) {
      o.step = Step::kFinalize;
      o.polls = 0;
      return advance();
    }
    if (o.polling && ++o.polls > options_.maxPolls) {
      return fail("authorizations still pending after " + std::to_string(options_.maxPolls) +
                  " polls");
    }
    o.polling = true;
    o.next = 0;
    return schedule(o.passDelay);
  }
  post(o.authorizations[o.next], "", false, guarded([this](http::HttpResponse& r) {
         Order& order = *current_;
         Json authz = parseJson(r.body);
         const std::string status = stringMember(authz, "status");
         const std::string host =
             authz.contains("identifier") ? stringMember(authz["identifier"], "value") : "?";
         if (status == "valid") {
           order.valid[order.next++] = true;
           return advance();
         }
         if (status != "pending" && status != "processing") {
           if (auto found = failureProblem(authz)) order.failure.problemKind = found->second.kind();
           return fail("authorization for " + host + " is " +
                       (status.empty() ? "unreadable" : status) + ": " + failureDetail(authz));
         }
         order.passDelay = pollDelay(&r);
         // RFC 8555 section 7.1.4: a wildcard's authorization is for the
         // base name, marked `wildcard`; only dns-01 can prove it.
         const bool wildcard = authz.value("wildcard", false);
         std::string type = "http-01";  // also for IP addresses (RFC 8738: no tls-alpn-01 here)
         if (wildcard || options_.challenge == conf::AcmeChallenge::kDns01) {
           type = "dns-01";
         } else if (options_.challenge == conf::AcmeChallenge::kTlsAlpn01 && !isIpLiteral(host)) {
           type = "tls-alpn-01";
         }
         const Json* challenge = nullptr;
         if (authz.contains("challenges") && authz["challenges"].is_array()) {
           for (const auto& c : authz["challenges"]) {
             if (stringMember(c, "type") == type) challenge = &c;
           }
         }
         const std::string challengeStatus =
             challenge != nullptr ? stringMember(*challenge, "status") : std::string();
         // Answered before a restart (resumed order) or by an earlier order
         // of this account: the answer is prepared again, not sent again.
         const bool prepareOnly = challengeStatus == "processing" && type != "dns-01";
         if (order.polling || status != "pending" || challenge == nullptr ||
             (challengeStatus != "pending" && !prepareOnly)) {
           if (challenge == nullptr) {
             return fail("no " + type + " challenge offered for " + host);
           }
           ++order.next;  // answered already: poll it in the next pass
           return advance();
         }
         const std::string token = stringMember(*challenge, "token");
         if (!validToken(token)) {
           return fail("the " + type + " token for " + host + " is malformed");
         }
         startChallenge(type, host, wildcard, token,
                        prepareOnly ? std::string() : stringMember(*challenge, "url"));
       }));
}

void Client::startChallenge(const std::string& type, const std::string& host, bool wildcard,
                            const std::string& token, const std::string& url) {
  Order& o = *current_;
  const std::string keyAuth = keyAuthorization(token, *accountKey_);
  // The CA is told to validate only once every node of a fleet can answer
  // (at once on a single node).
  const uint64_t seq = o.seq;
  std::weak_ptr<bool> life = life_;
  auto answerWhenShared = [this, life, seq, host, url](Status shared) {
    if (life.expired() || current_ == nullptr || current_->seq != seq) return;
    if (!shared.ok()) return fail("the challenge for " + host + ": " + shared.error().message);
    answerChallenge(url);
  };
  if (type == "http-01") {
    o.tokens.push_back(token);
    challenges_.put(token, keyAuth, answerWhenShared);
    return;
  }
  if (type == "tls-alpn-01") {
    o.alpnHosts.push_back(host);
    Status made = challenges_.putTlsAlpn(host, keyAuth, answerWhenShared);
    if (!made.ok()) return fail(made.error().message);
    return;
  }
  if (options_.dnsHook.empty()) {
    return fail((wildcard ? "*." : "") + host + " needs dns-01 and no acme.dns_hook is set");
  }
  std::string name = dnsRecordName(host);
  std::string value = dnsRecordValue(keyAuth);
  // Recorded before it runs: a `set` that half-worked is cleared too.
  o.dnsRecords.emplace_back(name, value);
  runCommand(loop_, {options_.dnsHook, "set", name, value}, options_.hookTimeout,
             [this, life, seq, name, url](Status s) {
               if (life.expired() || current_ == nullptr || current_->seq != seq) return;
               if (!s.ok()) return fail("dns_hook set " + name + ": " + s.error().message);
               log::info("acme: dns_hook set " + name);
               answerChallenge(url);
             });
}

void Client::answerChallenge(const std::string& url) {
  if (url.empty()) {  // prepared only (see fetchAuthorization)
    ++current_->next;
    return advance();
  }
  post(url, "{}", false, guarded([this](http::HttpResponse&) {
         ++current_->next;
         advance();
       }));
}

void Client::finalize() {
  Order& o = *current_;
  auto csr = makeCsr(o.request.hosts, o.request.keyType);
  if (!csr) return fail(csr.error().message);
  const std::string body = certstore::jsonText(Json{{"csr", base64url(csr->der)}});
  o.csr = std::move(*csr);
  post(o.finalizeUrl, body, false, guarded([this](http::HttpResponse& r) {
         current_->step = Step::kPollOrder;
         current_->polls = 0;
         Json order = parseJson(r.body);
         if (stringMember(order, "status") == "valid") return advance();  // shortcut
         schedule(pollDelay(&r));
       }));
}

void Client::pollOrder() {
  post(current_->url, "", false, guarded([this](http::HttpResponse& r) {
         Json order = parseJson(r.body);
         const std::string status = stringMember(order, "status");
         if (status == "valid") {
           current_->certificateUrl = stringMember(order, "certificate");
           if (current_->certificateUrl.empty()) return fail("valid order without certificate");
           current_->step = Step::kDownload;
           return advance();
         }
         if (status != "processing" && status != "ready" && status != "pending") {
           return fail("order is " + (status.empty() ? std::string("unreadable") : status) + ": " +
                       failureDetail(order));
         }
         if (++current_->polls > options_.maxPolls) {
           return fail("order still " + status + " after " + std::to_string(options_.maxPolls) +
                       " polls");
         }
         schedule(pollDelay(&r));
       }));
}

void Client::download() {
  post(current_->certificateUrl, "", false, guarded([this](http::HttpResponse& r) {
         if (r.body.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
           return fail("certificate download: HTTP " + std::to_string(r.status) +
                       " without a PEM chain");
         }
         if (options_.preferredChain.empty()) return store(r.body);
         const uint64_t seq = current_->seq;
         auto fetch = [this, seq](const std::string& url,
                                  std::function<void(Result<std::string>)> done) {
           post(url, "", false, [this, seq, done = std::move(done)](Response chain) {
             if (current_ == nullptr || current_->seq != seq) return;  // cancelled meanwhile
             if (!chain) return done(chain.error());
             done(std::move(chain->body));
           });
         };
         choosePreferredChain(
             options_.preferredChain, r.body, alternateChainUrls(r, current_->certificateUrl),
             std::move(fetch), [this, seq](std::string pem, std::string why) {
               if (current_ == nullptr || current_->seq != seq) return;
               log::info("acme: certificate `" + current_->request.certificateName + "`: " + why);
               store(pem);
             });
       }));
}

void Client::store(const std::string& chainPem) {
  const OrderRequest& req = current_->request;
  const certstore::CertificateStore store =
      req.storage ? certstore::CertificateStore(req.storage) : store_;
  lane_.run<Status>(
      [store, name = req.certificateName, chainPem, keyPem = current_->csr->keyPem,
       from = "certificate from " + current_->certificateUrl, site = req.site]() mutable {
        auto added =
            store.add(name, chainPem, keyPem, /*replace=*/true, certstore::CertSource::kAcme,
                      ::time(nullptr), from, "the order's new key", site);
        OPENSSL_cleanse(keyPem.data(), keyPem.size());
        return added ? Status(Ok{}) : Status(added.error());
      },
      [this, seq = current_->seq, directory = store.directory()](Status added) {
        if (current_ == nullptr || current_->seq != seq) return;  // cancelled meanwhile
        if (!added.ok()) return fail("storing it: " + added.error().message);
        const OrderRequest& ordered = current_->request;
        std::string hosts;
        for (const auto& h : ordered.hosts) hosts += (hosts.empty() ? "" : ", ") + h;
        log::notice("acme: certificate `" + ordered.certificateName + "` for site `" +
                    ordered.site + "` (" + hosts + ") issued and stored in " + directory);
        succeed();
      });
}

}  // namespace tlsedge::acme
