// Storage: where tlsedge keeps what must outlive the process (certificate
// entries, the ACME account and per-site state, the local CA), by key.
//
// A key is a relative path of names joined by '/' ("certs/shop",
// "acme/sites/shop.json"); no name is empty, "." or "..", or starts with
// '.' (the backends' own temporaries). A key holds a value, or is a group:
// the keys under it, written and removed as one (a certificate entry is the
// group certs/NAME: its chain, key and meta). Every write is atomic: a
// reader, or a crash, sees the old value or group or the new one, whole.
//
// The shape follows certmagic's Storage (load, store, delete, exists,
// list), with the group write a certificate entry needs. Backends: the state
// directory (certstore/file_storage.h) and the fleet's etcd
// (fleet/etcd_storage.h); fleet/open_storage.h chooses.
//
// Thread: blocking I/O: control loop, thread pool or CLI, never a worker.
// A backend is safe to call from several threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tlsedge::certstore {

class Storage {
 public:
  // kSecret values (private keys) are never readable by others: mode 0600
  // on disk, encrypted under the fleet key in etcd.
  enum class Secrecy { kPublic, kSecret };
  struct Item {
    std::string name;  // one name, no '/'
    std::string value;
    Secrecy secrecy = Secrecy::kPublic;
  };

  virtual ~Storage() = default;

  // The value at `key`; ErrorKind::kNotFound when there is none.
  virtual Result<std::string> load(std::string_view key) const = 0;
  // Writes `value` at `key` (creating the groups above it).
  virtual Status store(std::string_view key, std::string_view value, Secrecy secrecy) = 0;
  // As store, but only where `key` holds nothing yet: ErrorKind::kConflict
  // when it does (two nodes creating the fleet's ACME account key: one wins,
  // the other reads the winner's).
  virtual Status create(std::string_view key, std::string_view value, Secrecy secrecy) = 0;
  // Replaces the group `key` by exactly `items`; `replace` false: refuses
  // (ErrorKind::kConflict) when the group exists. Returns whether one was
  // replaced.
  virtual Result<bool> storeGroup(std::string_view key, const std::vector<Item>& items,
                                  bool replace) = 0;
  // Removes the value or group at `key`; ErrorKind::kNotFound when none.
  virtual Status remove(std::string_view key) = 0;
  // Whether `key` holds a value or is a group; an error when the backend
  // cannot tell (never taken for "no": a caller would create or report
  // absent what only could not be read).
  virtual Result<bool> exists(std::string_view key) const = 0;
  // The names directly under `key` (values and groups), sorted; none when
  // `key` does not exist.
  virtual Result<std::vector<std::string>> list(std::string_view key) const = 0;
  // `key` as messages name it: the file's path, or the etcd key.
  virtual std::string describe(std::string_view key) const = 0;
};

using StoragePtr = std::shared_ptr<Storage>;

// Checks a key's names (see above); the error says which name and why.
Status checkStorageKey(std::string_view key);

}  // namespace tlsedge::certstore
