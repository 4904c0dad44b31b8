// acme::Client: the RFC 8555 client, as explicit state machines on the
// control loop: the acme::Issuer (acme/issuer.h) for a CA's directory URL.
// Every HTTP exchange goes through http::HttpClient; every read and write of
// the storage (the account key and account.json, the issued certificate)
// runs on the client's lane (net/offload_lane.h: libuv's thread pool, in
// order): nothing here blocks the loop.
//
// One order runs at a time; order() queues the others. An order walks:
// directory -> account (newAccount, once per process; with External
// Account Binding when configured, acme/eab.h) -> [revoke the old
// certificate] -> newOrder (or fetch the order to resume) ->
// authorizations (a first pass prepares each pending authorization's
// challenge and answers `{}`, so the CA validates them all at once; then
// passes poll the ones not yet valid) -> finalize with a CSR (fresh key) ->
// poll the order -> download the PEM chain (with acme.preferred_chain, the
// matching one among the alternates, acme/chain.h) -> CertificateStore::add
// (source acme, the site in meta.json) -> challenges cleared.
//
// Challenges: wildcard authorizations always dns-01; the others the
// configured one (http-01 by default; IP addresses always http-01).
// Preparing: http-01 puts the key authorization into the ChallengeStore;
// tls-alpn-01 makes the challenge certificate here (control loop) and puts
// it there for the TLS listener; dns-01 runs the hook's `set` and waits for
// it. Clearing: tokens and certificates are removed, the hook's `clear` run
// for every record set (its result only logged). Every POST is a flattened JWS
// with a nonce from the pool; a `badNonce` answer is retried with the nonce
// it carries. Polls wait Retry-After when sent, else 1 s doubling to 8 s.
//
// Thread: the control loop only. Lifetime: destroying the Client (or
// cancel()) drops pending callbacks unrun and clears its challenge tokens.
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "acme/challenge_store.h"
#include "acme/csr.h"
#include "acme/issuer.h"
#include "acme/jose.h"
#include "base/result.h"
#include "certstore/storage.h"
#include "certstore/store.h"
#include "conf/config.h"
#include "http/http_client.h"
#include "net/offload_lane.h"

namespace tlsedge::acme {

struct ClientOptions {
  std::string directoryUrl;
  std::string email;  // contact; empty: none
  // Where the account (acme/<ca-id>/account.key, account.json) and the
  // certificates (certs/) are kept.
  certstore::StoragePtr storage;
  // Trust anchors for the CA's HTTPS, PEM text with a name for messages.
  std::vector<std::pair<std::string, std::string>> roots;
  std::chrono::milliseconds requestTimeout{30000};
  std::chrono::milliseconds firstPoll{1000};  // doubles up to maxPoll
  std::chrono::milliseconds maxPoll{8000};
  int maxPolls = 60;  // per authorization / order before giving up
  conf::AcmeChallenge challenge = conf::AcmeChallenge::kHttp01;  // for non-wildcard names
  std::string dnsHook;                                           // empty: no dns-01
  std::chrono::milliseconds hookTimeout{60000};
  std::optional<conf::AcmeEab> eab;  // External Account Binding for newAccount (acme/eab.h)
  std::string preferredChain;        // issuer CN of the wanted chain's top (acme/chain.h)
};

// "<host>_<port>_<path>" with everything outside [A-Za-z0-9.-] as '_':
// the directory under <state>/acme/ for one CA's account.
std::string caId(const std::string& directoryUrl);

class Client final : public Issuer {
 public:
  static Result<std::unique_ptr<Client>> create(uv_loop_t* loop, ChallengeStore& challenges,
                                                ClientOptions options);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Queues an order; `done` runs on the loop when it ended (never inside
  // order()).
  void order(OrderRequest request, Done done) override;
  // Drops the running and queued orders; no callback runs.
  void cancel();

  bool busy() const { return current_ != nullptr || !queue_.empty(); }
  uint64_t badNonceRetries() const { return badNonceRetries_; }
  const std::string& accountUrl() const { return kid_; }
  // Of the order whose `done` is running (or ran last): kept per order, so
  // a queued order starting meanwhile does not overwrite it.
  const OrderFailure& lastFailure() const override { return lastFailure_; }

 private:
  struct Order;
  enum class Step;
  using Response = Result<http::HttpResponse>;
  using ResponseCallback = std::function<void(Response)>;

  Client(uv_loop_t* loop, ChallengeStore& challenges, ClientOptions options);

  void startNext();
  void advance();                     // runs the current order's step
  void fail(const std::string& why);  // ends the current order with an error
  void succeed();
  void endOrder(Status status);
  void schedule(std::chrono::milliseconds delay);  // advance() later
  std::chrono::milliseconds pollDelay(const http::HttpResponse* response);

  // The steps (each sends one request; its answer picks the next step).
  void loadDirectory();
  void ensureAccount();                  // the account key: loaded or made, on the lane
  void registerAccount();                // newAccount
  std::string accountDirectory() const;  // acme/CA-ID in the storage
  void newOrder();
  void resumeOrder();
  void revoke();
  Step afterAccount() const;  // revoke, resume or newOrder
  // Takes the order object's finalize URL and authorizations; false if it is none.
  bool adoptOrder(const std::string& body, const std::string& url);
  void fetchAuthorization();
  // Prepares the challenge `challenge` (of `type`) of the authorization for
  // `host`, then answers it (an empty `url`: prepares only).
  void startChallenge(const std::string& type, const std::string& host, bool wildcard,
                      const std::string& token, const std::string& url);
  void answerChallenge(const std::string& url);
  void clearChallenges(Order& order);
  void finalize();
  void pollOrder();
  void download();
  void store(const std::string& chainPem);

  // A signed POST (POST-as-GET when `payload` is empty), with the nonce
  // pool and badNonce retries. `useJwk`: newAccount.
  void post(const std::string& url, const std::string& payload, bool useJwk, ResponseCallback done,
            int attempt = 0);
  void takeNonce(const http::HttpResponse& response);
  // Wraps a step's callback: drops it when the order it was for is gone.
  ResponseCallback guarded(std::function<void(http::HttpResponse&)> next);

  uv_loop_t* loop_;
  ChallengeStore& challenges_;
  ClientOptions options_;
  certstore::CertificateStore store_;
  std::unique_ptr<http::HttpClient> http_;
  uv_timer_t* timer_ = nullptr;

  // The CA session: learned once, shared by every order.
  std::string newNonceUrl_, newAccountUrl_, newOrderUrl_, revokeCertUrl_;
  bool externalAccountRequired_ = false;  // the directory's meta says so
  std::optional<AccountKey> accountKey_;
  std::string kid_;  // the account URL
  std::vector<std::string> nonces_;
  uint64_t badNonceRetries_ = 0;

  // Callbacks that may outlive the Client (hook runs) hold a weak copy.
  std::shared_ptr<bool> life_ = std::make_shared<bool>(true);
  std::unique_ptr<Order> current_;
  std::deque<std::unique_ptr<Order>> queue_;
  uint64_t orderSeq_ = 0;
  OrderFailure lastFailure_;
  // After everything its callbacks use: destroyed first, dropping them.
  net::OffloadLane lane_;
};

}  // namespace tlsedge::acme
