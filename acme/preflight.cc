#include "acme/preflight.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>

#include <algorithm>

#include "acme/jose.h"
#include "base/log.h"
#include "net/loop.h"

namespace tlsedge::acme {
namespace {

constexpr std::string_view kChallengePath = "/.well-known/acme-challenge/";

std::string randomToken() {
  uint8_t bytes[32];
  RAND_bytes(bytes, sizeof bytes);
  return base64url(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

std::string urlHost(const std::string& address) {
  return address.find(':') != std::string::npos ? "[" + address + "]" : address;
}

// One uv_getaddrinfo; outlives the Preflight if need be (libuv owns it
// until the callback).
struct Resolve {
  uv_getaddrinfo_t req;
  std::weak_ptr<bool> life;
  std::function<void(Result<std::vector<std::string>>)> done;
};

void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  std::unique_ptr<Resolve> r(static_cast<Resolve*>(req->data));
  std::vector<std::string> addresses;
  for (addrinfo* ai = res; ai != nullptr && status == 0; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (ai->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, text, sizeof text);
    } else if (ai->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr, text,
                sizeof text);
    } else {
      continue;
    }
    if (std::find(addresses.begin(), addresses.end(), text) == addresses.end()) {
      addresses.emplace_back(text);
    }
  }
  if (res != nullptr) uv_freeaddrinfo(res);
  if (r->life.expired()) return;
  if (status != 0) return r->done(makeError(net::uvErrorText(status)));
  if (addresses.empty()) return r->done(makeError("no IPv4 or IPv6 address"));
  r->done(std::move(addresses));
}

}  // namespace

struct Preflight::Check {
  Preflight* owner = nullptr;
  uint64_t id = 0;
  std::vector<std::string> hosts;
  Done done;
  size_t host = 0;  // being checked
  std::vector<std::string> addresses;
  size_t address = 0;  // being probed
  std::string token, answer;
  uv_timer_t* timer = nullptr;  // defers the end onto the loop (data: this Check)
  Status result = Ok{};
};

Preflight::Preflight(uv_loop_t* loop, ChallengeStore& challenges, PreflightOptions options)
    : loop_(loop), challenges_(challenges), options_(std::move(options)) {}

Result<std::unique_ptr<Preflight>> Preflight::create(uv_loop_t* loop, ChallengeStore& challenges,
                                                     PreflightOptions options) {
  std::unique_ptr<Preflight> p(new Preflight(loop, challenges, std::move(options)));
  http::HttpClientOptions http;
  http.timeout = p->options_.timeout;
  http.maxResponseBytes = 4096;
  http.userAgent = "tlsedge-acme-preflight";
  auto made = http::HttpClient::create(loop, std::move(http));
  if (!made) return makeError("acme pre-flight: " + made.error().message);
  p->http_ = std::move(*made);
  return p;
}

Preflight::~Preflight() { cancel(); }

void Preflight::cancel() {
  http_->cancelAll();
  for (auto& [id, c] : checks_) {
    challenges_.remove(c->token);
    net::closeAndDelete(reinterpret_cast<uv_handle_t*>(c->timer), c->timer);
  }
  checks_.clear();
}

void Preflight::check(std::vector<std::string> hosts, Done done) {
  auto c = std::make_unique<Check>();
  c->hosts = std::move(hosts);
  c->done = std::move(done);
  c->token = randomToken();
  c->answer = randomToken();
  c->timer = new uv_timer_t;
  uv_timer_init(loop_, c->timer);
  c->timer->data = c.get();
  c->owner = this;
  c->id = ++seq_;
  const uint64_t id = c->id;
  Check& placed = *c;
  checks_.emplace(id, std::move(c));
  if (options_.httpPort == 0) return next(id);
  // In a fleet the host may reach any node: probe once every node answers.
  challenges_.put(
      placed.token, placed.answer, [this, id, life = std::weak_ptr<bool>(life_)](Status shared) {
        if (life.expired()) return;
        auto it = checks_.find(id);
        if (it == checks_.end()) return;  // cancelled meanwhile
        if (!shared.ok()) {
          return finishLater(*it->second, makeError("the probe's answer was not shared with the "
                                                    "fleet: " +
                                                    shared.error().message));
        }
        next(id);
      });
}

// Ends the check from the loop: check() never calls `done` itself.
void Preflight::finishLater(Check& c, Status status) {
  c.result = std::move(status);
  uv_timer_start(
      c.timer,
      [](uv_timer_t* t) noexcept {
        auto* check = static_cast<Check*>(t->data);
        check->owner->finish(check->id, check->result);
      },
      0, 0);
}

// Starts the current host: resolves it, or takes acme.preflight_resolve's address.
void Preflight::next(uint64_t id) {
  Check& c = *checks_.at(id);
  while (c.host < c.hosts.size() && c.hosts[c.host].starts_with("*.")) ++c.host;  // dns-01
  if (c.host >= c.hosts.size()) return finishLater(c, Ok{});
  const std::string& host = c.hosts[c.host];
  c.address = 0;
  auto done = [this, id](Result<std::vector<std::string>> addresses) {
    resolved(id, std::move(addresses));
  };
  if (auto it = options_.resolve.find(host); it != options_.resolve.end()) {
    c.addresses = {it->second};
    log::debug("acme: pre-flight: " + host + " -> " + it->second + " (acme.preflight_resolve)");
    return probe(id);
  }
  auto* r = new Resolve{{}, life_, std::move(done)};
  r->req.data = r;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (int rc = uv_getaddrinfo(loop_, &r->req, onResolved, host.c_str(), nullptr, &hints); rc != 0) {
    delete r;
    return finishLater(c, makeError("host " + host + " does not resolve: " + net::uvErrorText(rc)));
  }
}

void Preflight::resolved(uint64_t id, Result<std::vector<std::string>> addresses) {
  auto it = checks_.find(id);
  if (it == checks_.end()) return;  // cancelled meanwhile
  Check& c = *it->second;
  if (!addresses) {
    return finish(id, makeError("host " + c.hosts[c.host] +
                                " does not resolve: " + addresses.error().message));
  }
  c.addresses = std::move(*addresses);
  if (c.addresses.size() > options_.maxAddresses) c.addresses.resize(options_.maxAddresses);
  probe(id);
}

void Preflight::probe(uint64_t id) {
  Check& c = *checks_.at(id);
  const std::string& host = c.hosts[c.host];
  if (options_.httpPort == 0 || c.address >= c.addresses.size()) {
    ++c.host;  // every address answered the probe (or nothing to probe)
    return next(id);
  }
  const std::string address = c.addresses[c.address];
  const std::string port = std::to_string(options_.httpPort);
  http::HttpRequest request;
  request.url = "http://" + urlHost(address) + ":" + port + std::string(kChallengePath) + c.token;
  request.host = host + ":" + port;
  http_->send(std::move(request), [this, id, host, address,
                                   port](Result<http::HttpResponse> response) {
    auto it = checks_.find(id);
    if (it == checks_.end()) return;
    Check& check = *it->second;
    std::string why;
    if (!response) {
      why = response.error().message;
    } else if (response->status != 200) {
      why = "port " + port + " answered HTTP " + std::to_string(response->status) +
            " to the probe: another server";
    } else if (response->body != check.answer) {
      why = "port " + port + " answered the probe with another body: another server";
    }
    if (!why.empty()) {
      return finish(
          id, makeError("host " + host + " (" + address + ") does not reach this edge: " + why));
    }
    ++check.address;
    probe(id);
  });
}

void Preflight::finish(uint64_t id, Status status) {
  auto it = checks_.find(id);
  if (it == checks_.end()) return;
  std::unique_ptr<Check> c = std::move(it->second);
  checks_.erase(it);
  challenges_.remove(c->token);
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(c->timer), c->timer);
  if (c->done) c->done(std::move(status));
}

}  // namespace tlsedge::acme
