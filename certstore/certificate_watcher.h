// CertificateWatcher: hot swap of one certificate when its files change,
// without a config reload.
//
// Watches (uv_fs_event) the directories holding the `certificates:` files of
// the config. An event naming a certificate's chain or key file marks that
// certificate; kDebounce after the last event the marked certificates are
// reloaded from their files, each on its own:
//   - valid and different: the current snapshot is updated for that one
//     certificate (Selector::withCertificate, O(changed)) and published;
//     logged "certificate NAME swapped (serial X)";
//   - failing while one of its files was modified less than kSettle ago: a
//     writer is still at it (a half-written file, or the chain renamed and
//     the key not yet, which looks like a key mismatch), checked again
//     kDebounce later;
//   - otherwise refused: logged with the reason (which names the file),
//     counted; the previous certificate keeps serving;
//   - identical to what is served (events for unrelated files, a touch):
//     nothing.
// Operators and ACME clients replace files atomically (temp + rename); both
// files renamed within kDebounce of each other are taken together. A
// certificate whose files are a store entry's (the embedded default) is
// applied as a store entry change (below).
//
// It also watches the state directory's store, <state>/certs (certstore/
// store.h, written by `tlsedge cert add|rm` as a temporary directory renamed
// or exchanged into place). An event naming an entry (not a temporary: names
// starting with '.' are ignored, so a half-written entry is never looked at)
// marks that entry, as does storeEntryChanged(name) (ACME, after it wrote
// the store). The admin API's uploads and removals are applied at once from
// the credentials it validated (applyValidated), not re-read from disk. kDebounce after the last
// event each marked entry is reloaded on its own and applied to the snapshot by certstore::
// StoreBindings (store_bindings.h): O(that certificate + the site hosts it
// can cover), never O(store); the entries of one debounce are published
// together:
//   - added, replaced or removed, and accepted: the snapshot is updated
//     (the certificate, the hosts of sites naming it, the unbound site hosts
//     whose newest cover changed) and published; logged "certificate store
//     entry NAME added|replaced|removed: N site host(s) rebound";
//   - present but invalid (load error): refused, logged with the reason,
//     counted; the previous certificate (if any) keeps serving;
//   - a change a reload would refuse (an entry in use by
//     tls.default_certificate, a fallback, or a site without a fallback
//     removed; the last certificate of a host with nothing else removed; a
//     name `certificates:` defines too): refused the same way, the previous
//     certificate keeps serving (a hand `rm -rf` of an in-use entry does not
//     take a site down; the CLI refuses that removal). A bound entry of a
//     site that has a tls.fallback_certificate is removed: the fallback
//     serves, as after a reload;
//   - identical to what is served: nothing.
// Only SIGHUP rebuilds the whole snapshot. A missing <state>/certs is not
// created; it is watched once it exists at a SIGHUP or a storeEntryChanged().
// Only the entries directly under certs/ are watched: a file edited in place
// inside an entry (which `cert add` never does) needs SIGHUP.
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

namespace tlsedge::proxy {

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
  // be the one built from `config` (O(store), once per start or reload). A
  // missing directory is logged and not watched.
  void watchStore(conf::ConfigPtr config);
  // Store entry `name` changed (added, replaced, removed; e.g. by the admin
  // API): applied kDebounce later, exactly as a watch event naming it, without
  // waiting for the kernel's. Names starting with '.' are ignored.
  void storeEntryChanged(const std::string& name);
  // Store entry `name` was just written (or removed: null) by this process
  // with `credentials` as validated (the admin API's upload): applied now,
  // from them, without reading the files back or waiting for the watch. The
  // watch event of the same write later finds them served (unchanged).
  void applyValidated(const std::string& name, certstore::CredentialsPtr credentials);
  void close();

  const CertificateSwapStats& stats() const { return stats_; }

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
  CertificateSwapStats stats_;
};

}  // namespace tlsedge::proxy
