#include "fleet/replica.h"

#include <algorithm>
#include <vector>

#include "base/log.h"
#include "net/loop.h"
#include "net/offload.h"

namespace tlsedge::fleet {

namespace {

constexpr int64_t kPage = 1000;  // keys per range (docs/etcd.md, section 5)
constexpr std::chrono::milliseconds kFirstBackoff{500};
constexpr std::chrono::milliseconds kMaxBackoff{10000};
constexpr std::string_view kCerts = "certs";

using Item = certstore::Storage::Item;

struct Entry {
  std::string name;
  std::vector<Item> items;
  bool broken = false;  // a value that did not open: left as the node has it
};

// The entry name and file name of an etcd key under `under` ("P/certs/").
bool splitKey(std::string_view key, std::string_view under, std::string_view& name,
              std::string_view& file) {
  if (key.substr(0, under.size()) != under) return false;
  const std::string_view rest = key.substr(under.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  name = rest.substr(0, slash);
  file = rest.substr(slash + 1);
  return true;
}

void addItem(const EtcdStorage& fleet, Entry& entry, std::string_view file, KeyValue& kv) {
  const bool sealed = FleetKey::isSealed(kv.value);
  auto value = fleet.reveal(kv.key, std::move(kv.value));
  if (!value) {
    log::warning("fleet: " + value.error().message + "; entry `" + entry.name +
                 "` left as this node has it");
    entry.broken = true;
    return;
  }
  entry.items.push_back(
      {std::string(file), std::move(*value),
       sealed ? certstore::Storage::Secrecy::kSecret : certstore::Storage::Secrecy::kPublic});
}

// Makes the local entry hold exactly entry.items (none: removed). Returns
// whether anything was written.
Result<bool> writeEntry(certstore::Storage& local, const Entry& entry) {
  const std::string key = std::string(kCerts) + "/" + entry.name;
  if (entry.items.empty()) {
    if (!local.exists(key)) return false;
    if (Status removed = local.remove(key); !removed) return removed.error();
    return true;
  }
  auto names = local.list(key);
  bool same = names.ok() && names->size() == entry.items.size();
  for (size_t i = 0; same && i < entry.items.size(); ++i) {
    auto value = local.load(key + "/" + entry.items[i].name);
    same = value.ok() && *value == entry.items[i].value;
  }
  if (same) return false;
  auto stored = local.storeGroup(key, entry.items, true);
  if (!stored) return stored.error();
  return true;
}

void record(Replica::Outcome& out, certstore::Storage& local, const Entry& entry) {
  if (entry.broken) {
    ++out.failedEntries;
    return;
  }
  auto written = writeEntry(local, entry);
  if (!written) {
    log::warning("fleet: entry `" + entry.name + "` not copied: " + written.error().message);
    ++out.failedEntries;
  } else if (*written) {
    out.changed.insert(entry.name);
  }
}

std::string certsPrefix(const EtcdStorage& fleet) { return fleet.etcdKey(kCerts) + "/"; }

}  // namespace

Replica::Outcome syncAll(const EtcdStorage& fleet, certstore::Storage& local) {
  Replica::Outcome out;
  const std::string under = certsPrefix(fleet);
  std::set<std::string> seen;
  Entry current;
  auto flush = [&] {
    if (current.name.empty()) return;
    seen.insert(current.name);
    record(out, local, current);
    current = Entry{};
  };
  auto scanned =
      fleet.client().scan(under, false, kPage, [&](std::vector<KeyValue>& page) -> Status {
        for (KeyValue& kv : page) {
          std::string_view name, file;
          if (!splitKey(kv.key, under, name, file)) continue;
          if (name != current.name) {  // keys come sorted: an entry's are adjacent
            flush();
            current.name = std::string(name);
          }
          addItem(fleet, current, file, kv);
        }
        return Ok{};
      });
  if (!scanned) {
    out.status = scanned.error();  // nothing removed: the read was not whole
    return out;
  }
  flush();
  out.revision = *scanned;
  auto held = local.list(kCerts);
  if (!held) {
    if (held.error().kind != ErrorKind::kNotFound) out.status = held.error();
    return out;
  }
  for (const std::string& name : *held) {
    if (seen.count(name) == 0) record(out, local, Entry{name, {}, false});
  }
  return out;
}

Replica::Outcome syncEntries(const EtcdStorage& fleet, certstore::Storage& local,
                             const std::set<std::string>& names, int64_t revision) {
  Replica::Outcome out;
  out.revision = revision;
  const std::string under = certsPrefix(fleet);
  for (const std::string& name : names) {
    const std::string group = under + name + "/";
    EtcdClient::RangeOptions at;
    at.revision = revision;
    auto read = fleet.client().range(group, prefixEnd(group), at);
    if (!read && revision != 0) {  // compacted since: the newest is as good
      read = fleet.client().range(group, prefixEnd(group), {});
    }
    if (!read) {
      out.status = read.error();
      return out;
    }
    Entry entry{name, {}, false};
    for (KeyValue& kv : read->kvs) {
      std::string_view entryName, file;
      if (splitKey(kv.key, under, entryName, file)) addItem(fleet, entry, file, kv);
    }
    record(out, local, entry);
  }
  return out;
}

Replica::Replica(uv_loop_t* loop, std::shared_ptr<const EtcdStorage> fleet,
                 certstore::StoragePtr local, std::unique_ptr<EtcdWatch> watch, Changed changed)
    : loop_(loop),
      fleet_(std::move(fleet)),
      local_(std::move(local)),
      watch_(std::move(watch)),
      changed_(std::move(changed)),
      timer_(new uv_timer_t) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

Replica::~Replica() { close(); }

void Replica::start() { fullSync(); }

void Replica::close() {
  if (closed_) return;
  closed_ = true;
  watch_->stop();
  alive_.reset();
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(timer_), timer_);
}

void Replica::fullSync() {
  busy_ = true;
  stats_.connected = false;
  queue_.clear();  // a full read covers whatever they named
  watch_->stop();
  std::shared_ptr<const EtcdStorage> fleet = fleet_;
  certstore::StoragePtr local = local_;
  std::weak_ptr<int> alive = alive_;
  net::offload<Outcome>(
      loop_, [fleet, local] { return syncAll(*fleet, *local); },
      [this, alive](Outcome outcome) {
        if (alive.expired()) return;
        busy_ = false;
        const bool ok = outcome.status.ok();
        const size_t written = outcome.changed.size();
        finished(std::move(outcome));
        if (!ok) return;
        ++stats_.fullSyncs;
        log::info("fleet: the store is in sync with " + fleet_->describe(kCerts) + " at revision " +
                  std::to_string(stats_.revision) + " (" + std::to_string(written) +
                  " entries written)");
        watchFrom(stats_.revision + 1);
      });
}

void Replica::watchFrom(int64_t revision) {
  stats_.connected = true;
  watch_->start(
      certsPrefix(*fleet_), revision,
      [this](int64_t at, std::vector<EtcdWatch::Event> events) {
        const std::string under = certsPrefix(*fleet_);
        std::set<std::string> names;
        for (const EtcdWatch::Event& event : events) {
          std::string_view name, file;
          if (splitKey(event.kv.key, under, name, file)) names.emplace(name);
        }
        backoff_ = std::chrono::milliseconds{0};
        queue_.emplace_back(at, std::move(names));
        applyNext();
      },
      [this](Error why, int64_t compactRevision) {
        stats_.connected = false;
        ++stats_.failures;
        const int64_t from = queue_.empty() ? stats_.revision : queue_.back().first;
        if (compactRevision != 0) {
          ++stats_.resyncs;
          log::warning("fleet: the watch fell behind etcd's compaction (" + why.message +
                       "): reading the whole store again");
          return busy_ ? retryLater([this] { fullSync(); }) : fullSync();
        }
        log::warning("fleet: the watch ended: " + why.message + "; serving what " +
                     local_->describe(kCerts) + " holds");
        retryLater([this, from] { watchFrom(from + 1); });
      });
}

void Replica::applyNext() {
  if (busy_ || queue_.empty() || closed_) return;
  std::set<std::string> names;
  int64_t revision = 0;
  while (!queue_.empty()) {  // what queued meanwhile goes in one batch
    names.merge(queue_.front().second);
    revision = std::max(revision, queue_.front().first);
    queue_.pop_front();
  }
  busy_ = true;
  std::shared_ptr<const EtcdStorage> fleet = fleet_;
  certstore::StoragePtr local = local_;
  std::weak_ptr<int> alive = alive_;
  net::offload<Outcome>(
      loop_,
      [fleet, local, names = std::move(names), revision] {
        return syncEntries(*fleet, *local, names, revision);
      },
      [this, alive](Outcome outcome) {
        if (alive.expired()) return;
        busy_ = false;
        const bool ok = outcome.status.ok();
        finished(std::move(outcome));
        if (!ok) return;  // finished() scheduled a full read
        applyNext();
      });
}

void Replica::finished(Outcome outcome) {
  for (const std::string& name : outcome.changed) changed_(name);
  stats_.written += outcome.changed.size();
  stats_.failures += outcome.failedEntries;
  if (outcome.status.ok()) {
    stats_.revision = std::max(stats_.revision, outcome.revision);
    return;
  }
  ++stats_.failures;
  log::warning("fleet: reading " + fleet_->describe(kCerts) +
               " failed: " + outcome.status.error().message + "; serving what " +
               local_->describe(kCerts) + " holds");
  retryLater([this] { fullSync(); });
}

void Replica::retryLater(std::function<void()> what) {
  if (closed_) return;
  watch_->stop();
  stats_.connected = false;
  backoff_ = std::clamp(backoff_ * 2, kFirstBackoff, kMaxBackoff);
  retry_ = std::move(what);
  uv_timer_start(timer_, &Replica::onTimer, static_cast<uint64_t>(backoff_.count()), 0);
}

void Replica::onTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Replica*>(timer->data);
  if (self->busy_) return self->retryLater(std::move(self->retry_));
  std::function<void()> what = std::move(self->retry_);
  if (what) what();
}

}  // namespace tlsedge::fleet
