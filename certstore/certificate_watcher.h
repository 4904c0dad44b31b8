// CertificateWatcher: hot swap of one certificate or store entry, without a
// config reload. It watches (uv_fs_event) the directories of the config's
// `certificates:` files and the state directory's store (<state>/certs; in
// fleet mode the replica names each entry it writes instead);
// kDebounce after the last event each marked certificate or entry is
// reloaded on its own, applied to the served snapshot in O(changed)
// (Selector::withCertificate, certstore::StoreBindings) and handed to
// `publish`; invalid material or a change a reload would refuse is logged,
// counted, and the previous certificate keeps serving. The admin API's
// uploads arrive as validated credentials (applyValidated). kRebuildFrom
// store entries or more at once (a fleet node's first copy of the store, a
// resync) are not applied one by one: the snapshot is built again from the
// configuration and the files, as a reload builds it, on libuv's thread
// pool; store changes named meanwhile, uploads included, are applied from
// their files after it (the bindings of the snapshot it replaces are freed
// when it starts).
//
// The whole behaviour (settling writers, temporaries, what is refused, what
// needs SIGHUP) is described in one place: docs/architecture.md, "Hot swap".
//
// Thread: control loop only. Lifetime: close() before the loop ends.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "certstore/selector.h"
#include "certstore/store_bindings.h"
#include "conf/config.h"

namespace tlsedge::certstore {

struct CertificateSwapStats {
  uint64_t swapped = 0;    // published a new certificate
  uint64_t refused = 0;    // complete but bad new material
  uint64_t deferred = 0;   // half-written, looked at again later
  uint64_t unchanged = 0;  // same certificate and key as served
  // The state directory's store, per entry change.
  uint64_t storeApplied = 0;    // an entry added, replaced or removed in the snapshot
  uint64_t storeRefused = 0;    // invalid, or refused as a reload would; the previous serves
  uint64_t storeUnchanged = 0;  // the same certificate as served, or nothing it affects
};

class CertificateWatcher {
 public:
  static constexpr std::chrono::milliseconds kDebounce{100};
  // Store changes applied at once from this many: a rebuild (rebuild()).
  static constexpr size_t kRebuildFrom = 1000;
  static constexpr std::chrono::milliseconds kSettle{1000};

  using Current = std::function<std::shared_ptr<const certstore::Selector>()>;
  using Publish = std::function<void(std::shared_ptr<const certstore::Selector>)>;

  // `current` gives the snapshot being served; `publish` makes a new one current.
  CertificateWatcher(uv_loop_t* loop, Current current, Publish publish);
  ~CertificateWatcher();

  // Watches the directories of `certificates` (replacing what was watched:
  // a reload). Directories that cannot be watched are logged and skipped.
  void watch(const std::vector<conf::CertificateFiles>& certificates);
  // Watches config->stateDir + "/certs" (replacing the previous store watch:
  // a reload) and indexes the bindings of the current snapshot, which must
  // be the one built from `config` (O(store), once per start or reload;
  // none here when `built` is given: built from the same snapshot off the
  // loop). A missing directory is logged and not watched.
  void watchStore(conf::ConfigPtr config, std::unique_ptr<StoreBindings> built = nullptr);
  // Store entry `name` changed (added, replaced, removed; e.g. by the admin
  // API): applied kDebounce later, exactly as a watch event naming it, without
  // waiting for the kernel's. `written`: this process wrote it whole (the
  // fleet replica): applied at the loop's next turn, with every entry named
  // before then. Names starting with '.' are ignored.
  void storeEntryChanged(const std::string& name, bool written = false);
  // Store entry `name` was just written (or removed: null) by this process
  // with `credentials` as validated (the admin API's upload): applied now,
  // from them, without reading the files back or waiting for the watch. The
  // watch event of the same write later finds them served (unchanged).
  void applyValidated(const std::string& name, certstore::CredentialsPtr credentials);
  void close();

  const CertificateSwapStats& stats() const { return stats_; }
  // Store entries named and not yet applied (the debounce runs).
  bool storePending() const { return !storeMarked_.empty() || storeRescan_ || rebuilding_; }

 private:
  struct Directory;
  struct Store;
  static void onEvent(uv_fs_event_t* handle, const char* filename, int events, int status) noexcept;
  static void onTimer(uv_timer_t* timer) noexcept;
  void changed(const Directory& directory, const char* filename);
  void reloadMarked();
  void swap(const conf::CertificateFiles& files);
  static void onStoreEvent(uv_fs_event_t* handle, const char* filename, int events,
                           int status) noexcept;
  void closeStore();
  void startStoreWatch();
  void applyStore();
  // `changed` store entries at once (a fleet node's first copy, a resync):
  // the snapshot and its bindings built again from the configuration and
  // the files, as a reload does, on libuv's thread pool.
  void rebuild(size_t changed);
  // One entry's new state (null: removed; an error: refused) applied to
  // `snapshot`, counted and logged; the caller publishes.
  void applyEntry(std::shared_ptr<const certstore::Selector>& snapshot,
                  const std::string& directory, const std::string& name,
                  Result<certstore::CredentialsPtr> loaded, time_t now);

  uv_loop_t* loop_;
  Current current_;
  Publish publish_;
  uv_timer_t* timer_ = nullptr;
  std::vector<Directory*> directories_;
  std::map<std::string, conf::CertificateFiles> certificates_;  // by name
  std::set<std::string> marked_;                                // names to reload
  Store* store_ = nullptr;                                      // the <state>/certs watch, if any
  conf::ConfigPtr storeConfig_;                                 // null: no store to apply
  std::unique_ptr<certstore::StoreBindings> bindings_;
  std::set<std::string> storeMarked_;  // store entries to apply at the next timer
  bool storeRescan_ = false;           // the kernel named no entry: look at all
  bool rebuilding_ = false;            // a rebuild runs on the pool: store changes wait
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // pool work outliving us checks it
  CertificateSwapStats stats_;
};

}  // namespace tlsedge::certstore
