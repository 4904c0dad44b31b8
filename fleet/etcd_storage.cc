#include "fleet/etcd_storage.h"

#include <algorithm>
#include <set>

namespace tlsedge::fleet {

namespace {
constexpr int64_t kPage = 1000;  // keys per range of a scan (docs/etcd.md, section 5)
}  // namespace

Result<std::shared_ptr<EtcdStorage>> EtcdStorage::open(const conf::EtcdStorage& config) {
  auto key = FleetKey::load(config.fleetKeyFile);
  if (!key) return key.error();
  auto client = EtcdClient::create(config);
  if (!client) return client.error();
  return std::make_shared<EtcdStorage>(
      std::move(*client), std::make_shared<const FleetKey>(std::move(*key)), config.prefix);
}

std::string EtcdStorage::describe(std::string_view key) const { return "etcd:" + etcdKey(key); }

Result<std::string> EtcdStorage::reveal(std::string_view etcdKey, std::string value) const {
  if (!FleetKey::isSealed(value)) return value;
  auto opened = key_->open(value, etcdKey);
  if (!opened) return makeError("etcd:" + std::string(etcdKey) + ": " + opened.error().message);
  return opened;
}

Result<std::string> EtcdStorage::encode(std::string_view etcdKey, std::string_view value,
                                        Secrecy secrecy) const {
  if (secrecy == Secrecy::kPublic) return std::string(value);
  return key_->seal(value, etcdKey);
}

std::shared_ptr<EtcdStorage> EtcdStorage::fenced(Compare fence, std::string what) const {
  auto copy = std::make_shared<EtcdStorage>(client_, key_, prefix_);
  copy->fence_ = std::move(fence);
  copy->fenceWhat_ = std::move(what);
  return copy;
}

Result<EtcdClient::TxnResult> EtcdStorage::commit(Txn txn) const {
  if (fence_) txn.compare.push_back(*fence_);
  auto committed = client_->txn(txn);
  if (!committed || committed->succeeded || !fence_) return committed;
  Txn check;
  check.compare.push_back(*fence_);
  auto holds = client_->txn(check);
  if (!holds) return holds.error();
  if (!holds->succeeded) {
    return makeError(fenceWhat_ +
                         " was lost (taken over by another node, or its lease expired); "
                         "nothing was written",
                     ErrorKind::kConflict);
  }
  return committed;
}

Result<std::string> EtcdStorage::load(std::string_view key) const {
  if (Status valid = certstore::checkStorageKey(key); !valid) return valid.error();
  const std::string at = etcdKey(key);
  auto read = client_->range(at, "", {});
  if (!read) return read.error();
  if (read->kvs.empty()) return makeError(describe(key) + " does not exist", ErrorKind::kNotFound);
  return reveal(at, std::move(read->kvs.front().value));
}

Result<EtcdStorage::Versioned> EtcdStorage::loadVersioned(std::string_view key) const {
  if (Status valid = certstore::checkStorageKey(key); !valid) return valid.error();
  const std::string at = etcdKey(key);
  auto read = client_->range(at, "", {});
  if (!read) return read.error();
  if (read->kvs.empty()) return Versioned{};
  auto value = reveal(at, std::move(read->kvs.front().value));
  if (!value) return value.error();
  return Versioned{std::move(*value), read->kvs.front().modRevision};
}

Result<bool> EtcdStorage::storeIf(std::string_view key, std::string_view value, Secrecy secrecy,
                                  int64_t revision) {
  if (Status valid = certstore::checkStorageKey(key); !valid) return valid.error();
  const std::string at = etcdKey(key);
  auto encoded = encode(at, value, secrecy);
  if (!encoded) return encoded.error();
  Txn txn;
  txn.compare.push_back({at, "", Compare::Target::kMod, Compare::Relation::kEqual, revision, ""});
  txn.success.push_back({Operation::Kind::kPut, at, std::move(*encoded), "", 0});
  auto committed = commit(std::move(txn));
  if (!committed) return committed.error();
  return committed->succeeded;
}

Status EtcdStorage::store(std::string_view key, std::string_view value, Secrecy secrecy) {
  if (Status valid = certstore::checkStorageKey(key); !valid) return valid;
  const std::string at = etcdKey(key);
  auto encoded = encode(at, value, secrecy);
  if (!encoded) return encoded.error();
  Txn txn;
  txn.success.push_back({Operation::Kind::kPut, at, std::move(*encoded), "", 0});
  auto committed = commit(std::move(txn));
  if (!committed) return committed.error();
  return Ok{};
}

Status EtcdStorage::create(std::string_view key, std::string_view value, Secrecy secrecy) {
  if (Status valid = certstore::checkStorageKey(key); !valid) return valid;
  const std::string at = etcdKey(key);
  auto encoded = encode(at, value, secrecy);
  if (!encoded) return encoded.error();
  Txn txn;
  txn.compare.push_back({at, "", Compare::Target::kCreate, Compare::Relation::kEqual, 0, ""});
  txn.success.push_back({Operation::Kind::kPut, at, std::move(*encoded), "", 0});
  auto committed = commit(std::move(txn));
  if (!committed) return committed.error();
  if (!committed->succeeded) return makeError(describe(key) + " exists", ErrorKind::kConflict);
  return Ok{};
}

Result<bool> EtcdStorage::createAll(const std::vector<Value>& values) {
  if (values.size() > kMaxTxnValues) {
    return makeError("etcd: " + std::to_string(values.size()) + " values in one txn (at most " +
                         std::to_string(kMaxTxnValues) + ")",
                     ErrorKind::kInvalid);
  }
  Txn txn;
  for (const Value& v : values) {
    if (Status valid = certstore::checkStorageKey(v.key); !valid) return valid.error();
    const std::string at = etcdKey(v.key);
    auto encoded = encode(at, v.value, v.secrecy);
    if (!encoded) return encoded.error();
    txn.compare.push_back({at, "", Compare::Target::kCreate, Compare::Relation::kEqual, 0, ""});
    txn.success.push_back({Operation::Kind::kPut, at, std::move(*encoded), "", 0});
  }
  auto committed = commit(std::move(txn));
  if (!committed) return committed.error();
  return committed->succeeded;
}

Result<bool> EtcdStorage::storeGroup(std::string_view key, const std::vector<Item>& items,
                                     bool replace) {
  if (Status valid = certstore::checkStorageKey(key); !valid) return valid.error();
  const std::string group = etcdKey(key) + "/";
  const std::string end = prefixEnd(group);
  Txn txn;
  std::set<std::string> written;
  for (const Item& item : items) {
    if (Status valid = certstore::checkStorageKey(item.name);
        !valid || item.name.find('/') != std::string::npos) {
      return makeError("storage group " + describe(key) + ": bad item name `" + item.name + "`",
                       ErrorKind::kInvalid);
    }
    Operation put;
    put.key = group + item.name;
    auto encoded = encode(put.key, item.value, item.secrecy);
    if (!encoded) return encoded.error();
    put.value = std::move(*encoded);
    written.insert(put.key);
    txn.success.push_back(std::move(put));
  }
  EtcdClient::RangeOptions keysOnly;
  keysOnly.keysOnly = true;
  auto current = client_->range(group, end, keysOnly);
  if (!current) return current.error();
  const bool existed = !current->kvs.empty();
  if (existed && !replace) return makeError(describe(key) + " exists", ErrorKind::kConflict);
  for (const KeyValue& kv : current->kvs) {
    if (written.count(kv.key) == 0) {
      txn.success.push_back({Operation::Kind::kDelete, kv.key, "", "", 0});
    }
  }
  // Commit only if no key of the group changed since it was read (none
  // created, none replaced): the compare-and-swap two writers race on.
  txn.compare.push_back(
      {group, end, Compare::Target::kMod, Compare::Relation::kLess, current->revision + 1, ""});
  auto committed = commit(std::move(txn));
  if (!committed) return committed.error();
  if (!committed->succeeded) {
    return makeError(
        describe(key) + (existed ? " was changed by another writer meanwhile" : " exists"),
        ErrorKind::kConflict);
  }
  return existed;
}

Status EtcdStorage::remove(std::string_view key) {
  if (Status valid = certstore::checkStorageKey(key); !valid) return valid;
  const std::string at = etcdKey(key);
  if (fence_) {  // the value or the group, in one fenced txn
    auto there = exists(key);
    if (!there) return there.error();
    if (!*there) return makeError(describe(key) + " does not exist", ErrorKind::kNotFound);
    Txn txn;
    txn.success.push_back({Operation::Kind::kDelete, at, "", "", 0});
    txn.success.push_back({Operation::Kind::kDelete, at + "/", "", prefixEnd(at + "/"), 0});
    auto committed = commit(std::move(txn));
    if (!committed) return committed.error();
    return Ok{};
  }
  auto deleted = client_->remove(at, "");
  if (deleted && *deleted == 0) deleted = client_->remove(at + "/", prefixEnd(at + "/"));
  if (!deleted) return deleted.error();
  if (*deleted == 0) return makeError(describe(key) + " does not exist", ErrorKind::kNotFound);
  return Ok{};
}

Result<bool> EtcdStorage::exists(std::string_view key) const {
  if (Status valid = certstore::checkStorageKey(key); !valid) return valid.error();
  const std::string at = etcdKey(key);
  EtcdClient::RangeOptions count;
  count.countOnly = true;
  auto value = client_->range(at, "", count);
  if (!value) return value.error();
  if (value->count > 0) return true;
  auto group = client_->range(at + "/", prefixEnd(at + "/"), count);
  if (!group) return group.error();
  return group->count > 0;
}

Result<std::vector<std::string>> EtcdStorage::list(std::string_view key) const {
  if (Status valid = certstore::checkStorageKey(key); !valid) return valid.error();
  const std::string under = etcdKey(key) + "/";
  std::vector<std::string> names;
  auto scanned = client_->scan(under, true, kPage, [&](std::vector<KeyValue>& page) -> Status {
    for (const KeyValue& kv : page) {
      std::string_view rest = std::string_view(kv.key).substr(under.size());
      std::string_view name = rest.substr(0, rest.find('/'));
      if (!name.empty() && (names.empty() || names.back() != name)) names.emplace_back(name);
    }
    return Ok{};
  });
  if (!scanned) return scanned.error();
  // A name's keys are adjacent, but "a.b/x" sorts before "a/x".
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace tlsedge::fleet
