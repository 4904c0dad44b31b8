#include "acme/local_issuer.h"

#include <openssl/mem.h>

#include <ctime>
#include <optional>

#include "base/log.h"
#include "certstore/store.h"

namespace tlsedge::acme {

// Only the lane's jobs touch it, one at a time (net/offload_lane.h).
struct LocalIssuer::Authority {
  certstore::StoragePtr storage;
  std::optional<LocalCa> ca;

  // The CA, opened (or made) on first use; `notice` says which, once.
  Result<const LocalCa*> open(std::string* notice) {
    if (ca) return &*ca;
    bool created = false;
    auto opened = LocalCa::open(*storage, &created);
    if (!opened) return opened.error();
    ca = std::move(*opened);
    const std::string& path = ca->certificatePath();
    *notice = std::string("acme: ") + (created ? "created the" : "using the") +
              " local CA (directory: internal); its certificate is " + path +
              "; trust it for testing, e.g. curl --cacert " + path;
    return &*ca;
  }
};

namespace {

struct Outcome {
  std::string opened;  // the CA's notice, when this job opened it
  std::string issued;  // the certificate's notice
  Status status = Ok{};
};

// Issues `request`'s certificate and writes it to the store (blocking);
// the notice to log.
Result<std::string> issue(const LocalCa& ca, const certstore::StoragePtr& storage,
                          const OrderRequest& request, int64_t lifetimeSeconds) {
  const std::string what =
      "acme: certificate `" + request.certificateName + "` for site `" + request.site + "`";
  auto issued = ca.issue(request.hosts, request.keyType, lifetimeSeconds);
  if (!issued) return makeError(what + ": " + issued.error().message);
  const certstore::CertificateStore store(request.storage ? request.storage : storage);
  auto added = store.add(request.certificateName, issued->chainPem, issued->keyPem,
                         /*replace=*/true, certstore::CertSource::kAcme, ::time(nullptr),
                         "certificate from the local CA " + ca.certificatePath(),
                         "the order's new key", request.site);
  OPENSSL_cleanse(issued->keyPem.data(), issued->keyPem.size());
  if (!added) return makeError(what + ": storing it: " + added.error().message);
  std::string hosts;
  for (const auto& h : request.hosts) hosts += (hosts.empty() ? "" : ", ") + h;
  return what + " (" + hosts + ") issued by the local CA and stored in " + store.directory();
}

}  // namespace

std::unique_ptr<LocalIssuer> LocalIssuer::create(uv_loop_t* loop, certstore::StoragePtr storage,
                                                 int64_t lifetimeSeconds) {
  std::unique_ptr<LocalIssuer> issuer(new LocalIssuer(loop, std::move(storage), lifetimeSeconds));
  issuer->lane_.run<Outcome>(
      [authority = issuer->authority_] {
        Outcome out;
        auto ca = authority->open(&out.opened);
        if (!ca) out.status = ca.error();
        return out;
      },
      [](Outcome out) {
        if (!out.opened.empty()) log::notice(out.opened);
        if (!out.status.ok()) {
          log::error("acme: " + out.status.error().message + "; each order fails until it opens");
        }
      });
  return issuer;
}

LocalIssuer::LocalIssuer(uv_loop_t* loop, certstore::StoragePtr storage, int64_t lifetimeSeconds)
    : authority_(std::make_shared<Authority>(Authority{storage, std::nullopt})),
      caPath_(LocalCa::certificatePathIn(*storage)),
      lifetimeSeconds_(lifetimeSeconds),
      lane_(loop) {}

LocalIssuer::~LocalIssuer() = default;  // the lane drops what is pending, unrun

void LocalIssuer::order(OrderRequest request, Done done) {
  lane_.run<Outcome>(
      [authority = authority_, request = std::move(request), lifetime = lifetimeSeconds_] {
        Outcome out;
        auto ca = authority->open(&out.opened);
        auto issued = ca ? issue(**ca, authority->storage, request, lifetime)
                         : makeError("acme: certificate `" + request.certificateName +
                                     "` for site `" + request.site + "`: " + ca.error().message);
        if (issued) {
          out.issued = std::move(*issued);
        } else {
          out.status = issued.error();
        }
        return out;
      },
      [this, done = std::move(done)](Outcome out) {
        if (!out.opened.empty()) log::notice(out.opened);
        if (!out.issued.empty()) log::notice(out.issued);
        failure_ = OrderFailure{};
        if (done) done(std::move(out.status));  // may destroy this issuer (a reload)
      });
}

}  // namespace tlsedge::acme
