// acme::Preflight: before an order is placed, checks that every host of the
// site points at this edge, so that a misconfigured name costs no order (and
// no failed validation counted against the account) at the CA.
//
// Per host, in order: resolve it (uv_getaddrinfo on libuv's thread pool, or
// `acme.preflight_resolve`'s address for it), then for each address (at
// most 4, IPv4 and IPv6) GET http://ADDRESS:PORT/.well-known/acme-challenge/
// <random token> with `Host: HOST`, where PORT is the first `listen.http`
// port. The token and a random answer are put into the ChallengeStore for
// the check, so only this edge's HTTP listener answers them: a 200 with
// that exact body means the host reaches this edge; anything else (no
// address, connect refused, timeout, another status, another body) fails
// the check with an error naming the host, the address and why. The token
// is removed when the check ends.
//
// Which hosts: wildcard hosts (validated by dns-01) are skipped; the
// manager does not run the check at all for `challenge: dns-01` or
// `preflight: false`. TLS-ALPN-01 is checked through the HTTP listener too
// (the same address proves the name points here; a TLS probe could not
// verify a certificate the site does not have yet); without any HTTP
// listener only the resolution is checked.
//
// Thread: the control loop only. Destroying the Preflight (or cancel())
// drops pending callbacks unrun and removes its probe tokens.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "acme/challenge_store.h"
#include "base/result.h"
#include "http/http_client.h"

namespace tlsedge::acme {

struct PreflightOptions {
  uint16_t httpPort = 0;                       // 0: no HTTP listener, resolution only
  std::map<std::string, std::string> resolve;  // host -> address, instead of the resolver
  std::chrono::milliseconds timeout{5000};     // per probe request
  size_t maxAddresses = 4;                     // probed per host
};

class Preflight {
 public:
  using Done = std::function<void(Status)>;

  static Result<std::unique_ptr<Preflight>> create(uv_loop_t* loop, ChallengeStore& challenges,
                                                   PreflightOptions options);
  ~Preflight();
  Preflight(const Preflight&) = delete;
  Preflight& operator=(const Preflight&) = delete;

  // Checks `hosts`; `done` runs on the loop (never inside check()) with Ok
  // or the first host that does not point here: "host H does not resolve:
  // ...", "host H (ADDRESS) does not reach this edge: ...".
  void check(std::vector<std::string> hosts, Done done);
  void cancel();

 private:
  struct Check;
  Preflight(uv_loop_t* loop, ChallengeStore& challenges, PreflightOptions options);

  void next(uint64_t id);  // the current host's next step
  void resolved(uint64_t id, Result<std::vector<std::string>> addresses);
  void probe(uint64_t id);
  void finishLater(Check& check, Status status);
  void finish(uint64_t id, Status status);

  uv_loop_t* loop_;
  ChallengeStore& challenges_;
  PreflightOptions options_;
  std::unique_ptr<http::HttpClient> http_;
  std::map<uint64_t, std::unique_ptr<Check>> checks_;
  uint64_t seq_ = 0;
  std::shared_ptr<bool> life_ = std::make_shared<bool>(true);
};

}  // namespace tlsedge::acme
