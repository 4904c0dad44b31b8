#include "acme/local_issuer.h"

#include <openssl/mem.h>

#include <ctime>

#include "base/log.h"
#include "net/loop.h"

namespace tlsedge::acme {

Result<std::unique_ptr<LocalIssuer>> LocalIssuer::create(uv_loop_t* loop,
                                                         certstore::StoragePtr storage,
                                                         int64_t lifetimeSeconds) {
  bool created = false;
  auto ca = LocalCa::open(*storage, &created);
  if (!ca) return ca.error();
  const std::string path = ca->certificatePath();
  log::notice(std::string("acme: ") + (created ? "created the" : "using the") +
              " local CA (directory: internal); its certificate is " + path +
              "; trust it for testing, e.g. curl --cacert " + path);
  return std::unique_ptr<LocalIssuer>(
      new LocalIssuer(loop, std::move(*ca), std::move(storage), lifetimeSeconds));
}

LocalIssuer::LocalIssuer(uv_loop_t* loop, LocalCa ca, certstore::StoragePtr storage,
                         int64_t lifetimeSeconds)
    : loop_(loop),
      ca_(std::move(ca)),
      store_(std::move(storage)),
      lifetimeSeconds_(lifetimeSeconds),
      timer_(new uv_timer_t) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

LocalIssuer::~LocalIssuer() {
  queue_.clear();  // pending orders are dropped unrun
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(timer_), timer_);
}

void LocalIssuer::order(OrderRequest request, Done done) {
  queue_.emplace_back(std::move(request), std::move(done));
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(timer_))) {
    uv_timer_start(
        timer_, [](uv_timer_t* t) noexcept { static_cast<LocalIssuer*>(t->data)->issueNext(); }, 0,
        0);
  }
}

void LocalIssuer::issueNext() {
  if (queue_.empty()) return;
  auto [request, done] = std::move(queue_.front());
  queue_.pop_front();
  if (!queue_.empty()) {
    uv_timer_start(
        timer_, [](uv_timer_t* t) noexcept { static_cast<LocalIssuer*>(t->data)->issueNext(); }, 0,
        0);
  }
  Status status = issue(request);
  if (done) done(std::move(status));  // may destroy this issuer (a reload): nothing after
}

Status LocalIssuer::issue(const OrderRequest& request) {
  const std::string what =
      "acme: certificate `" + request.certificateName + "` for site `" + request.site + "`";
  auto issued = ca_.issue(request.hosts, request.keyType, lifetimeSeconds_);
  if (!issued) return makeError(what + ": " + issued.error().message);
  const certstore::CertificateStore store =
      request.storage ? certstore::CertificateStore(request.storage) : store_;
  auto added = store.add(request.certificateName, issued->chainPem, issued->keyPem,
                         /*replace=*/true, certstore::CertSource::kAcme, ::time(nullptr),
                         "certificate from the local CA " + ca_.certificatePath(),
                         "the order's new key", request.site);
  OPENSSL_cleanse(issued->keyPem.data(), issued->keyPem.size());
  if (!added) return makeError(what + ": storing it: " + added.error().message);
  std::string hosts;
  for (const auto& h : request.hosts) hosts += (hosts.empty() ? "" : ", ") + h;
  log::notice(what + " (" + hosts + ") issued by the local CA and stored in " + store.directory());
  return Ok{};
}

}  // namespace tlsedge::acme
