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
// files renamed within kDebounce of each other are taken together.
//
// It also watches the state directory's store, <state>/certs (certstore/
// store.h, written by `tlsedge cert add|rm` as a temporary directory renamed
// or exchanged into place). An event naming an entry (not a temporary: names
// starting with '.' are ignored, so a half-written entry is never looked at)
// marks the store; kDebounce after the last event the whole snapshot is
// rebuilt with Selector::build(config, now) -- O(store), which is what the
// store trigger costs today; the O(changed) path is the config-file swap
// above, and a per-entry store swap is a follow-up -- then:
//   - different from what is served (any host's certificates, a name's
//     certificate, the default): published; logged "certificate store
//     changed: snapshot rebuilt";
//   - the same: nothing;
//   - a build error (a bound store certificate removed or invalid): logged
//     with the reason, counted; the previous snapshot keeps serving (checked
//     again kDebounce later if a config certificate file is being written).
// A missing <state>/certs is not created and not watched; once it exists, a
// SIGHUP (which re-arms the watcher) starts watching it. Only the entries
// directly under certs/ are watched: a file edited in place inside an entry
// (which `cert add` never does) needs SIGHUP.
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
#include "conf/config.h"

namespace tlsedge::proxy {

struct CertificateSwapStats {
  uint64_t swapped = 0;    // published a new certificate
  uint64_t refused = 0;    // complete but bad new material
  uint64_t deferred = 0;   // half-written, looked at again later
  uint64_t unchanged = 0;  // same certificate and key as served
  // The state directory's store (whole-snapshot rebuilds).
  uint64_t storeRebuilt = 0;    // published a rebuilt snapshot
  uint64_t storeRefused = 0;    // the rebuild failed; the previous snapshot serves
  uint64_t storeUnchanged = 0;  // the rebuild served the same certificates
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
  // a reload), rebuilding the snapshot from `config` on changes. A missing
  // directory is logged and not watched.
  void watchStore(conf::ConfigPtr config);
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
  void rebuildStore();

  uv_loop_t* loop_;
  Current current_;
  Publish publish_;
  uv_timer_t* timer_ = nullptr;
  std::vector<Directory*> directories_;
  std::map<std::string, conf::CertificateFiles> certificates_;  // by name
  std::set<std::string> marked_;                                // names to reload
  Store* store_ = nullptr;                                      // the <state>/certs watch, if any
  bool storeMarked_ = false;  // rebuild from the store at the next timer
  CertificateSwapStats stats_;
};

}  // namespace tlsedge::proxy
