#include "proxy/request.h"

#include <algorithm>
#include <chrono>

#include "base/log.h"
#include "http/http_util.h"
#include "proxy/redirect.h"
#include "proxy/upstream/origin_request.h"
#include "proxy/worker.h"

namespace tlsedge::proxy {
namespace {
constexpr std::string_view kChallengePrefix = "/.well-known/acme-challenge/";

bool isIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

// The protocols of a client's Upgrade that `site` tunnels, comma-joined in
// the client's order; empty if none (RFC 9110 7.8: the others are ignored).
std::string offeredUpgrades(const http::MessageHead& head, const conf::Site& site) {
  std::string out;
  http::forEachUpgrade(head, [&](std::string_view protocol, std::string_view name) {
    const bool allowed =
        std::any_of(site.upgrades.begin(), site.upgrades.end(),
                    [&](const std::string& p) { return ascii::equalsIgnoreCase(name, p); });
    if (!allowed) return;
    if (!out.empty()) out += ", ";
    out += protocol;
  });
  return out;
}

// Whether an origin's 101 switched to a protocol `offered` named (RFC 9110
// 15.2.2: a server switches only to one the client listed).
bool switchedToOffered(const http::MessageHead& response, std::string_view offered) {
  bool any = false;
  bool all = true;
  http::forEachUpgrade(response, [&](std::string_view, std::string_view name) {
    bool listed = false;
    http::forEachListItem(offered, [&](std::string_view protocol) {
      listed = listed || ascii::equalsIgnoreCase(name, protocol.substr(0, protocol.find('/')));
    });
    any = true;
    all = all && listed;
  });
  return any && all;
}

}  // namespace

Request::Request(Worker& worker, const Generation& generation, Downstream& downstream, bool tls)
    : worker_(worker), generation_(generation), downstream_(downstream), tls_(tls) {}

Request::~Request() = default;

void Request::begin(http::MessageHead& head) {
  startUs_ = uv_hrtime() / 1000;
  ++worker_.stats().requests[head.versionMajor == 2   ? WorkerStats::kHttp2
                             : head.versionMinor == 0 ? WorkerStats::kHttp10
                                                      : WorkerStats::kHttp11];
  beginLog(head);
  site_ = nullptr;
  headRequest_ = head.method == "HEAD";
  clientHttp11_ = head.versionMajor > 1 || head.versionMinor >= 1;
  bodyComplete_ = false;
  responseStarted_ = false;
  upgradeOffer_.clear();
  continueRelayed_ = false;
  hsts_.clear();
  // RFC 9110 10.1.1: only HTTP/1.1 clients expect a 100, and only for content.
  const std::string* expect = head.find("expect");
  expectContinue_ = clientHttp11_ && expect != nullptr &&
                    ascii::equalsIgnoreCase(*expect, "100-continue") &&
                    (head.chunked || head.contentLength.value_or(0) > 0);
  bodyBytes_ = 0;
  if (ClientTable::Entry* client = downstream_.client(); client != nullptr) {
    if (const uint32_t wait = ClientTable::takeRequest(generation_.config->limits.perClient, client,
                                                       uv_now(worker_.loop()))) {
      ++worker_.stats().clientLimited[ClientTable::kRequestRate];
      respond(429, "Too Many Requests: over this client's request rate\n",
              "text/plain; charset=utf-8", {}, false, wait);
      return;
    }
  }
  const uint64_t maxBody = generation_.config->limits.maxBodySize;
  if (maxBody != 0 && head.contentLength.value_or(0) > maxBody) {
    // Refused before a byte of the body is read.
    ++worker_.stats().bodiesTooLarge;
    log::debug("client " + downstream_.peerIp() + ": 413: Content-Length " +
               std::to_string(*head.contentLength));
    refuse(413, "Content Too Large\n");
    return;
  }
  if (head.method == "CONNECT") {
    respond(501, "Not Implemented: CONNECT (tlsedge is a reverse proxy, not a forward proxy)\n");
    return;
  }
  http::RequestTarget target;
  if (const std::string_view refused = resolveRequestTarget(head, target); !refused.empty()) {
    // A request whose routing is in doubt (two Host fields, userinfo, a bad
    // authority): nothing after it on this connection is trusted either.
    ++worker_.stats().badRequests;
    log::debug("client " + downstream_.peerIp() + ": bad request: " + std::string(refused));
    refuse(400, "Bad Request: " + std::string(refused) + "\n");
    return;
  }
  if (log_ != nullptr) log_->host = target.authority;
  route(head, target);
}

void Request::route(http::MessageHead& head, const http::RequestTarget& request) {
  const Generation& gen = generation_;
  const std::string_view target = request.target;
  if (!tls_ && target.starts_with(kChallengePrefix)) {
    // RFC 8555 section 8.3: answered here, whatever the site's settings.
    std::string_view token = target.substr(kChallengePrefix.size());
    token = token.substr(0, token.find('?'));
    auto keyAuthorization =
        acme::validToken(token) ? worker_.challenges().find(token) : std::nullopt;
    if (keyAuthorization) {
      ++worker_.stats().challengesServed;
      respond(200, *keyAuthorization, "text/plain");
    } else {
      respond(404, "Not Found: unknown challenge token\n");
    }
    return;
  }
  if (!downstream_.covers(request.authority)) {
    ++worker_.stats().misdirected;
    respond(421, "Misdirected Request: this connection's certificate does not cover the host\n");
    return;
  }
  site_ = gen.router->findSite(request.authority);
  if (site_ == nullptr) {
    respond(404, "Not Found: no site for this host\n");
    return;
  }
  if (!tls_ && site_->redirectHttps) {
    std::string location = httpsRedirectLocation(request.authority, target, worker_.httpsPort());
    if (location.empty()) {
      respond(400, "Bad Request: invalid Host header\n");
      return;
    }
    ++worker_.stats().redirects;
    respond(site_->redirectStatus, "", "", location);
    return;
  }
  const conf::Route* r = gen.router->findRoute(*site_, target);
  if (r == nullptr) {
    respond(404, "Not Found: no route for this path\n");
    return;
  }
  if (r->respond) {
    respond(r->respond->status, r->respond->body, r->respond->contentType);
    return;
  }
  const conf::Upstream* upstream = gen.config->findUpstream(r->upstream);
  if (upstream == nullptr || upstream->servers.empty()) {  // validated away; be safe
    respond(502, "Bad Gateway: no upstream\n");
    return;
  }
  // RFC 9110 7.8: an HTTP/1.0 Upgrade is ignored; so is every protocol the
  // site does not tunnel (never h2c, whose tunnel would skip routing).
  if (head.upgrade && clientHttp11_) upgradeOffer_ = offeredUpgrades(head, *site_);
  proxyTo(*upstream, head, request);
}

void Request::proxyTo(const conf::Upstream& upstream, http::MessageHead& head,
                      const http::RequestTarget& target) {
  Exchange::Request request;
  request.head = originRequestHead({head, target.target, target.authority, downstream_.peerIp(),
                                    tls_, /*keepExpect=*/clientHttp11_, upgradeOffer_});
  if (head.chunked) {
    request.framing = BodyFraming::kChunked;
  } else if (head.contentLength.value_or(0) > 0) {
    request.framing = BodyFraming::kLength;
  }
  request.headMethod = headRequest_;
  request.idempotent = isIdempotent(head.method);
  request.upgrade = !upgradeOffer_.empty();
  if (upstream.sendProxyProtocol) {
    request.proxyHeader = net::buildProxyV2(downstream_.proxyClient());
    request.owner = downstream_.connectionId();
  }
  if (log_ != nullptr) log_->upstream = upstream.name;
  exchange_ = std::make_unique<Exchange>(worker_.upstreams(), generation_.upstreamSetup(upstream),
                                         std::move(request), *this);
  exchange_->start();
}

void Request::body(std::string_view data) {
  bodyBytes_ += data.size();
  const uint64_t maxBody = generation_.config->limits.maxBodySize;
  if (maxBody != 0 && bodyBytes_ > maxBody) {
    // Chunked (or answered early and still coming): the running total. The
    // exchange is aborted, so the origin sees a cut request, never a
    // truncated body passed off as whole.
    ++worker_.stats().bodiesTooLarge;
    log::debug("client " + downstream_.peerIp() + ": 413: body over " + std::to_string(maxBody) +
               " bytes");
    refuse(413, "Content Too Large\n");
    return;
  }
  if (exchange_ == nullptr) return;  // answered already: the body is read and dropped
  exchange_->sendBody(data);
  if (exchange_->writeQueueFull()) downstream_.pauseBody();  // onUpstreamDrained resumes
}

void Request::bodyDone(const std::vector<http::Header>& trailers) {
  if (bodyComplete_) return;
  bodyComplete_ = true;
  if (exchange_ != nullptr) exchange_->endBody(trailers);
}

void Request::refuse(int status, std::string_view text) {
  exchange_.reset();
  if (!responseStarted_) respond(status, text, "text/plain; charset=utf-8", {}, true);
  downstream_.abandon();
}

void Request::end() {
  endLog();
  exchange_.reset();
  statusCounted_ = false;
  responseStarted_ = false;
  // A request refused before its head is read has none of these.
  site_ = nullptr;
  headRequest_ = false;
  expectContinue_ = false;
}

bool Request::bodyMayNeverCome() const {
  return expectContinue_ && !continueRelayed_ && !bodyComplete_;
}

// ---------------------------------------------------------------- responses

std::string_view Request::siteHsts() {
  if (!tls_ || site_ == nullptr || !site_->hsts) return {};
  if (hsts_.empty()) hsts_ = hstsHeaderValue(*site_->hsts);
  return hsts_;
}

void Request::respond(int status, std::string_view body, std::string_view contentType,
                      std::string_view location, bool closing, uint32_t retryAfter) {
  logStatus(status);
  ResponseHead head;
  head.status = status;
  head.contentType = contentType;
  head.location = location;
  head.hsts = siteHsts();
  head.contentLength = body.size();
  head.bodyless = headRequest_;
  head.closing = closing;
  head.retryAfter = retryAfter;
  responseStarted_ = true;
  downstream_.respond(head, body);
}

void Request::onUpstreamHead(http::MessageHead& head) {
  logStatus(head.status);
  const uint64_t nowUs = uv_hrtime() / 1000;
  if (startUs_ != 0) worker_.stats().upstreamLatency.observe(nowUs - startUs_);
  if (log_ != nullptr) {
    log_->upstreamHeaderUs = static_cast<int64_t>(nowUs - log_->startUs);
    log_->upstreamAddr = exchange_->serverAddress();
  }
  ResponseHead out;
  out.status = head.status;
  out.reason = head.reason;
  out.origin = &head;
  // The origin's own Strict-Transport-Security wins over the site's.
  if (std::string_view hsts = siteHsts();
      !hsts.empty() && !head.find("strict-transport-security")) {
    out.hsts = hsts;
  }
  out.contentLength = head.contentLength;
  out.originChunked = head.chunked;
  // RFC 9112 6.3: no content whatever the head says (the exchange's parser
  // reads none, and bytes after such a head close the origin connection).
  out.bodyless = http::bodylessResponse(head.status, headRequest_);
  responseStarted_ = true;
  downstream_.sendHead(out);
}

void Request::onUpstreamInterim(http::MessageHead& head) {
  // RFC 9110 15.2: a proxy forwards 1xx, but never to an HTTP/1.0 client.
  if (!clientHttp11_ || responseStarted_) return;
  if (downstream_.sendInterim(head) && head.status == 100) continueRelayed_ = true;
}

void Request::onUpstreamUpgraded(http::MessageHead& head, net::Stream* origin,
                                 std::string_view originBytes) {
  // Complete; deleted on return (`head` lives in it). The stream is ours now.
  std::unique_ptr<Exchange> finished = std::move(exchange_);
  if (!bodyComplete_) {
    // Switched before the request's own body was all here: no clean tunnel.
    origin->close();
    log::warning("client " + downstream_.peerIp() + ": origin switched protocols mid-request");
    refuse(502, "Bad Gateway: origin switched protocols before the request ended\n");
    return;
  }
  if (!switchedToOffered(head, upgradeOffer_)) {
    // A tunnel to a protocol the client never asked for (or that this site
    // does not tunnel, h2c above all) would pass every routing rule.
    origin->close();
    ++worker_.stats().upstreamErrors;
    log::warning("client " + downstream_.peerIp() +
                 ": origin switched to a protocol that was not offered (" + upgradeOffer_ + ")");
    refuse(502, "Bad Gateway: origin switched to a protocol that was not offered\n");
    return;
  }
  responseStarted_ = true;
  logStatus(101);
  if (log_ != nullptr) log_->upstreamAddr = finished->serverAddress();
  downstream_.upgraded(head, origin, originBytes);
}

void Request::onUpstreamBody(std::string_view data) {
  if (!data.empty()) downstream_.sendBody(data);
}

void Request::onUpstreamReadDone() { downstream_.settle(); }

void Request::countFault(ResponseFault fault) {
  if (fault == ResponseFault::kNone) return;
  ++worker_.stats().upstreamInvalidResponses[static_cast<size_t>(fault) - 1];
}

void Request::onUpstreamComplete() {
  countFault(exchange_->fault());
  downstream_.endResponse(exchange_->responseTrailers());
  downstream_.settle();
}

void Request::onUpstreamFailed(int status, bool beforeHead, const std::string& reason) {
  (void)reason;  // logged by the exchange
  if (log_ != nullptr) log_->upstreamAddr = exchange_->serverAddress();
  ++worker_.stats().upstreamErrors;
  countFault(exchange_->fault());
  if (!beforeHead) {
    downstream_.cutResponse();
    return;
  }
  // Not waiting for the rest of a body the origin will never get.
  respond(status, std::string(http::reasonPhrase(status)) + "\n", "text/plain; charset=utf-8", {},
          !bodyComplete_);
  downstream_.settle();
}

void Request::onUpstreamDrained() { downstream_.resumeBody(); }

bool Request::clientWriteQueueFull() const { return downstream_.writeQueueFull(); }

// ---------------------------------------------------------------- access log

void Request::beginLog(const http::MessageHead& head) {
  statusCounted_ = false;
  if (!worker_.accessLog().enabled()) {
    log_.reset();
    return;
  }
  if (log_ == nullptr) log_ = std::make_unique<RequestLog>();
  RequestLog& r = *log_;
  r.pending = true;
  r.startUnixMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  r.startUs = startUs_;
  r.method = head.method;
  r.target = head.target;
  const std::string* host = head.find("host");
  r.host = host != nullptr ? *host : std::string();
  r.upstream.clear();
  r.upstreamAddr.clear();
  r.versionMajor = head.versionMajor;
  r.versionMinor = head.versionMinor;
  r.status = 0;
  r.bytesOut = 0;
  r.upstreamHeaderUs = -1;
}

void Request::logStatus(int status) {
  if (!statusCounted_) {
    statusCounted_ = true;
    WorkerStats::countResponse(siteCounts(), status);
  }
  if (log_ != nullptr && log_->status == 0) log_->status = status;
}

WorkerStats::StatusCounts& Request::siteCounts() {
  if (siteCounts_ == nullptr || countedSite_ != site_) {
    countedSite_ = site_;
    siteCounts_ =
        &worker_.stats().siteCounts(site_ != nullptr ? site_->name : WorkerStats::kNoSite);
  }
  return *siteCounts_;
}

void Request::endLog() {
  const bool logPending = log_ != nullptr && log_->pending;
  if (startUs_ == 0 && !logPending) return;
  // One clock read for the histogram and the access log: a read costs as
  // much as the rest of the bookkeeping (docs/benchmarks.md).
  const uint64_t nowUs = uv_hrtime() / 1000;
  if (startUs_ != 0) {
    if (statusCounted_) worker_.stats().requestLatency.observe(nowUs - startUs_);
    startUs_ = 0;
  }
  if (!logPending) return;
  RequestLog& r = *log_;
  r.pending = false;
  AccessRecord record;
  record.startUnixMs = r.startUnixMs;
  record.client = downstream_.peerIp();
  record.tls = tls_;
  record.site = site_ != nullptr ? std::string_view(site_->name) : std::string_view();
  record.host = r.host;
  record.method = r.method;
  record.target = r.target;
  record.versionMajor = r.versionMajor;
  record.versionMinor = r.versionMinor;
  record.status = r.status;
  record.bytesIn = bodyBytes_;
  record.bytesOut = r.bytesOut;
  record.durationUs = static_cast<int64_t>(nowUs - r.startUs);
  record.upstream = r.upstream;
  record.upstreamAddr = r.upstreamAddr;
  record.upstreamHeaderUs = r.upstreamHeaderUs;
  worker_.accessLog().append(record);
}

}  // namespace tlsedge::proxy
