// EtcdStorage: certstore::Storage on etcd, the fleet's shared store.
//
// Storage key K is the etcd key PREFIX/K (`storage.etcd.prefix`); a group
// is the keys under PREFIX/K/, one etcd key per file of an entry, never one
// blob. kSecret values (private keys) are sealed with the fleet key
// (AES-256-GCM, fleet/fleet_key.h) with the etcd key as associated data, so
// etcd and its backups never hold one in the clear, and a sealed value
// copied under another key does not open.
//
// Writes are compare-and-swap transactions: a group write reads the group,
// then commits its puts and deletes only if no key of the group changed
// since (two nodes replacing one entry at once: one wins, the other gets
// ErrorKind::kConflict), and `replace` false commits only if the group has
// no key at all. Every node then converges on the winner through its
// replica (fleet/replica.h). Errors when etcd cannot be reached are
// ErrorKind::kUnavailable, "fleet storage unreachable: ...", and nothing is
// written.
//
// Thread: blocking (EtcdClient): thread pool or CLI; safe from several
// threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "certstore/storage.h"
#include "fleet/etcd_client.h"
#include "fleet/fleet_key.h"

namespace tlsedge::fleet {

class EtcdStorage final : public certstore::Storage {
 public:
  // Reads the fleet key and the TLS files; does not contact etcd.
  static Result<std::shared_ptr<EtcdStorage>> open(const conf::EtcdStorage& config);
  EtcdStorage(std::shared_ptr<const EtcdClient> client, std::shared_ptr<const FleetKey> key,
              std::string prefix)
      : client_(std::move(client)), key_(std::move(key)), prefix_(std::move(prefix)) {}

  Result<std::string> load(std::string_view key) const override;
  Status store(std::string_view key, std::string_view value, Secrecy secrecy) override;
  Status create(std::string_view key, std::string_view value, Secrecy secrecy) override;
  Result<bool> storeGroup(std::string_view key, const std::vector<Item>& items,
                          bool replace) override;
  Status remove(std::string_view key) override;
  Result<bool> exists(std::string_view key) const override;
  Result<std::vector<std::string>> list(std::string_view key) const override;
  std::string describe(std::string_view key) const override;

  // Compare-and-swap on one value (the fleet's ticket key ring): the value
  // at `key` (opened if sealed) and its revision, 0 and "" when absent;
  // storeIf writes only if `key` is still at `revision` (0: still absent),
  // returning false when another writer came first.
  struct Versioned {
    std::string value;
    int64_t revision = 0;
  };
  Result<Versioned> loadVersioned(std::string_view key) const;
  Result<bool> storeIf(std::string_view key, std::string_view value, Secrecy secrecy,
                       int64_t revision);

  // Writes every value in one txn, each only where its key holds nothing
  // yet: false, and nothing written, when any does (the fleet import's
  // batches). At most kMaxTxnValues values, which etcd's default
  // --max-txn-ops (128) allows with their compares.
  struct Value {
    std::string key;
    std::string value;
    Secrecy secrecy = Secrecy::kPublic;
  };
  static constexpr size_t kMaxTxnValues = 120;
  Result<bool> createAll(const std::vector<Value>& values);

  // This storage with a fence (fleet/session.h's order locks): each of its
  // writes commits only while `fence` holds (the lock key still has the
  // create revision it had when taken), else writes nothing and fails
  // with ErrorKind::kConflict naming `what` ("the ACME order lock of site
  // `shop`"): a node that lost its lock never overwrites the winner's work.
  std::shared_ptr<EtcdStorage> fenced(Compare fence, std::string what) const;

  // The etcd key of storage key `key`.
  std::string etcdKey(std::string_view key) const { return prefix_ + "/" + std::string(key); }
  // A value read from etcd at `etcdKey`, opened if it is sealed.
  Result<std::string> reveal(std::string_view etcdKey, std::string value) const;
  const EtcdClient& client() const { return *client_; }
  const FleetKey& fleetKey() const { return *key_; }
  const std::string& prefix() const { return prefix_; }

 private:
  Result<std::string> encode(std::string_view etcdKey, std::string_view value,
                             Secrecy secrecy) const;
  // Commits `txn` with the fence's compare added. A fenced txn that failed
  // because the fence no longer holds is an error; one that failed on its
  // own compares is `succeeded` false.
  Result<EtcdClient::TxnResult> commit(Txn txn) const;

  std::shared_ptr<const EtcdClient> client_;
  std::shared_ptr<const FleetKey> key_;
  std::string prefix_;  // "/tlsedge": no trailing '/'
  std::optional<Compare> fence_;
  std::string fenceWhat_;
};

}  // namespace tlsedge::fleet
