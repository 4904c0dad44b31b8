#include "fleet/reseal.h"

namespace tlsedge::fleet {

namespace {

constexpr size_t kBatch = 60;  // compares and puts: within etcd's --max-txn-ops (128)

// `kv`'s value sealed again under the first key, as a put that keeps its lease.
Result<Operation> resealed(const EtcdStorage& fleet, const KeyValue& kv) {
  auto opened = fleet.reveal(kv.key, kv.value);
  if (!opened) return opened.error();
  auto sealed = fleet.fleetKey().seal(*opened, kv.key);
  if (!sealed) return sealed.error();
  return Operation{Operation::Kind::kPut, kv.key, std::move(*sealed), "", kv.lease};
}

// One txn: every value of `batch` sealed again, if none changed since read.
Result<bool> commit(const EtcdStorage& fleet, const std::vector<KeyValue>& batch) {
  Txn txn;
  for (const KeyValue& kv : batch) {
    auto put = resealed(fleet, kv);
    if (!put) return put.error();
    txn.compare.push_back(
        {kv.key, "", Compare::Target::kMod, Compare::Relation::kEqual, kv.modRevision, ""});
    txn.success.push_back(std::move(*put));
  }
  auto committed = fleet.client().txn(txn);
  if (!committed) return committed.error();
  return committed->succeeded;
}

}  // namespace

Result<ResealReport> resealFleet(const EtcdStorage& fleet) {
  ResealReport report;
  const std::string& current = fleet.fleetKey().sealingId();
  std::vector<KeyValue> batch;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Ok{};
    auto done = commit(fleet, batch);
    if (!done) return done.error();
    if (*done) {
      report.resealed += batch.size();
    } else {  // one changed meanwhile: each read again, and done alone
      for (const KeyValue& kv : batch) {
        auto now = fleet.client().range(kv.key, "", {});
        if (!now) return now.error();
        if (now->kvs.empty() || now->kvs.front().modRevision != kv.modRevision) {
          report.moved.push_back(kv.key);
          continue;
        }
        auto one = commit(fleet, {kv});
        if (!one) return one.error();
        if (*one) {
          ++report.resealed;
        } else {
          report.moved.push_back(kv.key);
        }
      }
    }
    batch.clear();
    return Ok{};
  };
  auto scanned = fleet.client().scan(fleet.prefix() + "/", false, 1000,
                                     [&](std::vector<KeyValue>& page) -> Status {
                                       for (KeyValue& kv : page) {
                                         const std::string_view id = FleetKey::sealedWith(kv.value);
                                         if (id.empty()) continue;
                                         if (id == current) {
                                           ++report.current;
                                           continue;
                                         }
                                         batch.push_back(std::move(kv));
                                         if (batch.size() == kBatch) {
                                           if (Status flushed = flush(); !flushed) return flushed;
                                         }
                                       }
                                       return Ok{};
                                     });
  if (!scanned) return scanned.error();
  if (Status flushed = flush(); !flushed) return flushed.error();
  return report;
}

}  // namespace tlsedge::fleet
