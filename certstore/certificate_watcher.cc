#include "certstore/certificate_watcher.h"

#include <malloc.h>

#include <openssl/evp.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>

#include "base/log.h"
#include "certstore/binding.h"
#include "certstore/credentials.h"
#include "certstore/store.h"
#include "net/loop.h"
#include "net/offload.h"

namespace tlsedge::certstore {

struct CertificateWatcher::Directory {
  CertificateWatcher* owner;
  std::string path;
  // File name in the directory -> certificate names using it.
  std::multimap<std::string, std::string> files;
  uv_fs_event_t handle;
};

struct CertificateWatcher::Store {
  CertificateWatcher* owner;
  std::string path;  // <state>/certs
  uv_fs_event_t handle;
};

namespace {

// Milliseconds since the file was last modified; a large value if unknown.
int64_t ageMs(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return INT64_MAX;
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  return (static_cast<int64_t>(now.tv_sec) - st.st_mtim.tv_sec) * 1000 +
         (static_cast<int64_t>(now.tv_nsec) - st.st_mtim.tv_nsec) / 1000000;
}

bool sameCredentials(const certstore::Credentials& a, const certstore::Credentials& b) {
  return a.sha256Fingerprint == b.sha256Fingerprint && a.chain.size() == b.chain.size() &&
         EVP_PKEY_cmp(a.key.get(), b.key.get()) == 1 &&
         std::equal(a.chain.begin(), a.chain.end(), b.chain.begin(),
                    [](const auto& x, const auto& y) {
                      return CRYPTO_BUFFER_len(x.get()) == CRYPTO_BUFFER_len(y.get()) &&
                             std::equal(CRYPTO_BUFFER_data(x.get()),
                                        CRYPTO_BUFFER_data(x.get()) + CRYPTO_BUFFER_len(x.get()),
                                        CRYPTO_BUFFER_data(y.get()));
                    });
}

}  // namespace

CertificateWatcher::CertificateWatcher(uv_loop_t* loop, Current current, Publish publish)
    : loop_(loop), current_(std::move(current)), publish_(std::move(publish)) {
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

CertificateWatcher::~CertificateWatcher() { close(); }

void CertificateWatcher::close() {
  for (Directory* d : directories_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&d->handle),
             [](uv_handle_t* h) noexcept { delete static_cast<Directory*>(h->data); });
  }
  directories_.clear();
  closeStore();
  if (timer_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) noexcept { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
}

void CertificateWatcher::watch(const std::vector<conf::CertificateFiles>& certificates) {
  if (timer_ == nullptr) return;  // closed
  for (Directory* d : directories_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&d->handle),
             [](uv_handle_t* h) noexcept { delete static_cast<Directory*>(h->data); });
  }
  directories_.clear();
  certificates_.clear();
  marked_.clear();
  uv_timer_stop(timer_);

  std::map<std::string, Directory*> byPath;
  for (const conf::CertificateFiles& files : certificates) {
    certificates_[files.name] = files;
    for (const std::string& file : {files.certPath, files.keyPath}) {
      std::filesystem::path p(file);
      std::string dir = p.parent_path().string();
      if (dir.empty()) dir = ".";
      Directory*& d = byPath[dir];
      if (d == nullptr) d = new Directory{this, dir, {}, {}};
      d->files.emplace(p.filename().string(), files.name);
    }
  }
  for (auto& [path, d] : byPath) {
    uv_fs_event_init(loop_, &d->handle);
    d->handle.data = d;
    int rc = uv_fs_event_start(&d->handle, &CertificateWatcher::onEvent, path.c_str(), 0);
    if (rc != 0) {
      log::warning("certificates in " + path +
                   " are not watched (changes need SIGHUP): " + net::uvErrorText(rc));
    }
    directories_.push_back(d);  // closed with the others even if it failed to start
  }
}

void CertificateWatcher::closeStore() {
  if (store_ == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&store_->handle),
           [](uv_handle_t* h) noexcept { delete static_cast<Store*>(h->data); });
  store_ = nullptr;
}

void CertificateWatcher::watchStore(conf::ConfigPtr config, std::unique_ptr<StoreBindings> built) {
  if (timer_ == nullptr) return;  // closed
  closeStore();
  storeMarked_.clear();
  storeRescan_ = false;
  if (bindings_ != nullptr) {
    // O(sites) to free: on the pool, off the loop.
    net::offload<int>(
        loop_,
        [old = std::shared_ptr<StoreBindings>(std::move(bindings_))]() mutable {
          old.reset();
          return 0;
        },
        [](int) {});
  }
  bindings_ = built != nullptr
                  ? std::move(built)
                  : std::make_unique<StoreBindings>(StoreBindings::build(config, *current_()));
  storeConfig_ = std::move(config);
  startStoreWatch();
  if (store_ == nullptr && !storeConfig_->etcd) {
    log::info("certificate store " + storeConfig_->stateDir +
              "/certs does not exist: not watched (once created, SIGHUP starts watching it)");
  }
}

void CertificateWatcher::startStoreWatch() {
  // Fleet mode: only the replica writes <state>/certs, and it names every
  // entry it writes (storeEntryChanged(name, true)); the kernel's events
  // would apply its batches once more, a thousand at a time.
  if (store_ != nullptr || storeConfig_ == nullptr || storeConfig_->etcd) return;
  std::string path = storeConfig_->stateDir + "/certs";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  auto* store = new Store{this, path, {}};
  uv_fs_event_init(loop_, &store->handle);
  store->handle.data = store;
  store_ = store;  // closed by closeStore() even if it failed to start
  int rc = uv_fs_event_start(&store->handle, &CertificateWatcher::onStoreEvent, path.c_str(), 0);
  if (rc != 0) {
    log::warning("certificate store " + path +
                 " is not watched (changes need SIGHUP): " + net::uvErrorText(rc));
  }
}

void CertificateWatcher::onStoreEvent(uv_fs_event_t* handle, const char* filename, int,
                                      int status) noexcept {
  auto* store = static_cast<Store*>(handle->data);
  if (status != 0) {
    log::warning("watching " + store->path + ": " + net::uvErrorText(status));
    return;
  }
  CertificateWatcher* self = store->owner;
  if (filename == nullptr) {  // the kernel did not say which: all of them
    self->storeRescan_ = true;
    uv_timer_start(self->timer_, &CertificateWatcher::onTimer, kDebounce.count(), 0);
    return;
  }
  self->storeEntryChanged(filename);
}

void CertificateWatcher::storeEntryChanged(const std::string& name, bool written) {
  // Temporaries (".tmp-NAME-...", ".rm-NAME-...") are half-written or on
  // their way out: only the rename that publishes an entry counts.
  if (timer_ == nullptr || name.empty() || name[0] == '.') return;
  startStoreWatch();  // the admin API may just have created certs/
  storeMarked_.insert(name);
  uv_timer_start(timer_, &CertificateWatcher::onTimer, written ? 0 : kDebounce.count(), 0);
}

void CertificateWatcher::onEvent(uv_fs_event_t* handle, const char* filename, int,
                                 int status) noexcept {
  auto* d = static_cast<Directory*>(handle->data);
  if (status != 0) {
    log::warning("watching " + d->path + ": " + net::uvErrorText(status));
    return;
  }
  d->owner->changed(*d, filename);
}

void CertificateWatcher::changed(const Directory& directory, const char* filename) {
  bool any = false;
  if (filename == nullptr) {  // the kernel did not say which: all of them
    for (const auto& [file, name] : directory.files) marked_.insert(name);
    any = !directory.files.empty();
  } else {
    auto [first, last] = directory.files.equal_range(filename);
    for (auto it = first; it != last; ++it) {
      marked_.insert(it->second);
      any = true;
    }
  }
  // Debounce: kDebounce after the last event (uv_timer_start restarts it).
  if (any) uv_timer_start(timer_, &CertificateWatcher::onTimer, kDebounce.count(), 0);
}

void CertificateWatcher::onTimer(uv_timer_t* timer) noexcept {
  static_cast<CertificateWatcher*>(timer->data)->reloadMarked();
}

void CertificateWatcher::reloadMarked() {
  std::set<std::string> marked;
  marked.swap(marked_);
  for (const std::string& name : marked) {
    auto it = certificates_.find(name);
    if (it != certificates_.end()) swap(it->second);
  }
  if (!storeMarked_.empty() || storeRescan_) applyStore();
  if (!marked_.empty()) {
    uv_timer_start(timer_, &CertificateWatcher::onTimer, kDebounce.count(), 0);
  }
}

void CertificateWatcher::swap(const conf::CertificateFiles& files) {
  // A `certificates:` entry that is the store's own files (the embedded
  // default) is a store entry: applied there, so that what it covers follows.
  if (storeConfig_ != nullptr && certstore::configListsStoreEntry(*storeConfig_, files.name)) {
    storeEntryChanged(files.name);
    return;
  }
  auto loaded = certstore::loadCredentials(files.name, files.certPath, files.keyPath,
                                           certstore::sharedBufferPool(), ::time(nullptr));
  if (!loaded.ok()) {
    if (ageMs(files.certPath) < kSettle.count() || ageMs(files.keyPath) < kSettle.count()) {
      ++stats_.deferred;
      marked_.insert(files.name);  // still being written: look again later
      return;
    }
    ++stats_.refused;
    log::error(
        "certificate " + files.name +
        ": new files refused, the previous certificate keeps serving: " + loaded.error().message);
    return;
  }
  std::shared_ptr<const certstore::Selector> current = current_();
  const certstore::Credentials* served = current->credentials(files.name);
  if (served != nullptr && sameCredentials(*served, **loaded)) {
    ++stats_.unchanged;
    return;
  }
  const std::string serial = (*loaded)->serialHex;
  publish_(current->withCertificate(std::move(*loaded)));
  ++stats_.swapped;
  log::info("certificate " + files.name + " swapped (serial " + serial + ")");
}

void CertificateWatcher::applyStore() {
  if (rebuilding_) return;  // storeMarked_ waits for the rebuilt snapshot
  std::set<std::string> names;
  names.swap(storeMarked_);
  if (bindings_ == nullptr || storeConfig_ == nullptr) return;
  if (names.size() >= kRebuildFrom) return rebuild(names.size());
  const certstore::CertificateStore store = certstore::CertificateStore::local(*storeConfig_);
  if (storeRescan_) {  // rare: O(store)
    storeRescan_ = false;
    for (std::string& name : bindings_->storeNames(*current_())) names.insert(std::move(name));
    if (auto listed = store.names(); listed.ok()) names.insert(listed->begin(), listed->end());
  }
  const time_t now = ::time(nullptr);
  std::shared_ptr<const certstore::Selector> snapshot = current_();
  const std::shared_ptr<const certstore::Selector> before = snapshot;
  for (const std::string& name : names) {
    Result<certstore::CredentialsPtr> loaded = certstore::CredentialsPtr();  // absent: removed
    if (auto there = store.contains(name); !there) {
      loaded = there.error();  // refused: what serves keeps serving
    } else if (*there) {
      loaded = store.load(name, certstore::sharedBufferPool(), now);
    }
    applyEntry(snapshot, store.directory(), name, std::move(loaded), now);
  }
  if (snapshot != before) publish_(std::move(snapshot));
}

void CertificateWatcher::rebuild(size_t changed) {
  rebuilding_ = true;
  // Its replacement comes with the rebuilt snapshot, and nothing applies
  // through it meanwhile (store changes and uploads wait): freed now, it
  // does not live beside the new one (45 MB of a new fleet node's peak at
  // 100k sites, every host then unbound; docs/benchmarks.md).
  bindings_.reset();
  struct Built {
    Result<std::shared_ptr<const Selector>> snapshot = Error{};
    StoreBindings bindings;
  };
  conf::ConfigPtr config = storeConfig_;
  net::offload<std::shared_ptr<Built>>(
      loop_,
      [config] {
        // The freed bindings' pages back to the kernel first (22 ms at 100k
        // sites, measured): glibc keeps them in the control loop's arena,
        // which this thread's allocations do not reuse. 457 -> 416 MiB peak
        // for a new fleet node at 100k (docs/benchmarks.md).
        ::malloc_trim(0);
        auto built = std::make_shared<Built>();
        built->snapshot = Selector::build(*config, ::time(nullptr));
        if (built->snapshot) built->bindings = StoreBindings::build(config, **built->snapshot);
        return built;
      },
      [this, alive = std::weak_ptr<int>(alive_), config, changed](std::shared_ptr<Built> built) {
        if (alive.expired()) return;
        rebuilding_ = false;
        if (timer_ == nullptr) return;  // closed
        if (config != storeConfig_) {
          // A reload meanwhile built its own snapshot from the files.
        } else if (!built->snapshot) {
          ++stats_.storeRefused;
          bindings_ = std::make_unique<StoreBindings>(StoreBindings::build(config, *current_()));
          storeRescan_ = true;  // one at a time instead: each refusal said
          log::error("certificate store: " + std::to_string(changed) +
                     " entries changed, rebuilding the snapshot failed: " +
                     built->snapshot.error().message + "; applying them one by one");
        } else {
          bindings_ = std::make_unique<StoreBindings>(std::move(built->bindings));
          stats_.storeApplied += changed;
          log::info("certificate store: " + std::to_string(changed) +
                    " entries changed at once: snapshot rebuilt (" +
                    std::to_string((*built->snapshot)->certificateCount()) + " certificates)");
          publish_(std::move(*built->snapshot));
          // It read the `certificates:` files too: one that changed while
          // it ran is looked at again (a few, each compared first).
          for (const auto& [name, files] : certificates_) marked_.insert(name);
        }
        if (!storeMarked_.empty() || storeRescan_ || !marked_.empty()) {  // what came meanwhile
          uv_timer_start(timer_, &CertificateWatcher::onTimer, 0, 0);
        }
      });
}

void CertificateWatcher::applyValidated(const std::string& name,
                                        certstore::CredentialsPtr credentials) {
  if (storeConfig_ == nullptr || name.empty() || name[0] == '.') return;
  if (rebuilding_) {  // applied from its files once the rebuilt snapshot is in
    storeMarked_.insert(name);
    return;
  }
  if (bindings_ == nullptr) return;
  startStoreWatch();  // the admin API may just have created certs/
  std::shared_ptr<const certstore::Selector> snapshot = current_();
  const std::shared_ptr<const certstore::Selector> before = snapshot;
  applyEntry(snapshot, storeConfig_->stateDir + "/certs", name, std::move(credentials),
             ::time(nullptr));
  if (snapshot != before) publish_(std::move(snapshot));
  // The watch event of the same write comes later and finds it served.
}

void CertificateWatcher::applyEntry(std::shared_ptr<const certstore::Selector>& snapshot,
                                    const std::string& directory, const std::string& name,
                                    Result<certstore::CredentialsPtr> loaded, time_t now) {
  const certstore::Credentials* served = snapshot->credentials(name);
  if (!loaded.ok()) {
    ++stats_.storeRefused;
    log::error("certificate store entry " + directory + "/" + name + " refused, " +
               (served != nullptr ? "the previous certificate keeps serving: " : "not served: ") +
               loaded.error().message);
    return;
  }
  const certstore::CredentialsPtr& credentials = *loaded;
  if (credentials != nullptr && served != nullptr && sameCredentials(*served, *credentials)) {
    ++stats_.storeUnchanged;
    return;
  }
  auto applied = bindings_->apply(snapshot, name, credentials, now);
  if (!applied.ok()) {
    ++stats_.storeRefused;
    log::error("certificate store entry " + directory + "/" + name + ": " +
               applied.error().message);
    return;
  }
  if (applied->snapshot == snapshot) {
    ++stats_.storeUnchanged;
    return;
  }
  snapshot = std::move(applied->snapshot);
  ++stats_.storeApplied;
  const char* what = credentials == nullptr ? "removed" : served == nullptr ? "added" : "replaced";
  log::info("certificate store entry " + name + " " + what +
            (credentials != nullptr ? " (serial " + credentials->serialHex + ")" : std::string()) +
            ": " + std::to_string(applied->hosts.size()) + " site host(s) rebound");
}

}  // namespace tlsedge::certstore
