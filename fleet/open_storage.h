// openStorage: the storage a configuration names, the one place a backend
// is chosen: the state directory (certstore/file_storage.h), or the
// fleet's etcd (fleet/etcd_storage.h) when `storage: { etcd: ... }` is set.
// The daemon opens it once at start (daemon::StorageChoice) and hands it to
// ACME and the admin API; the CLI opens its own.
//
// Thread: the caller's; reads the fleet key and TLS files, does not contact
// etcd.
#pragma once

#include <memory>

#include "base/result.h"
#include "certstore/storage.h"
#include "conf/config.h"
#include "fleet/etcd_storage.h"

namespace tlsedge::fleet {

struct OpenedStorage {
  certstore::StoragePtr storage;       // where writes go
  std::shared_ptr<EtcdStorage> fleet;  // the same, in fleet mode; null on a single node
};

// Errors: an unreadable or unsafe fleet key, an unreadable TLS file.
Result<OpenedStorage> openStorage(const conf::Config& config);

}  // namespace tlsedge::fleet
