#include "fleet/replica.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "net/loop.h"
#include "net/offload.h"

namespace tlsedge::fleet {

namespace {

constexpr int64_t kPage = 1000;  // keys per range (docs/etcd.md, section 5)
constexpr std::chrono::milliseconds kFirstBackoff{500};
constexpr std::chrono::milliseconds kMaxBackoff{10000};

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

// Whether the local entry already holds exactly entry.items.
bool holds(const certstore::FileStorage& local, const std::string& key, const Entry& entry) {
  auto names = local.list(key);
  if (!names.ok() || names->size() != entry.items.size()) return false;
  for (const Item& item : entry.items) {
    auto value = local.load(key + "/" + item.name);
    if (!value.ok() || *value != item.value) return false;
  }
  return true;
}

// Makes local entries hold exactly what etcd holds: removals at once, the
// entries to write gathered and written kPage at a time
// (FileStorage::storeGroups: one syncfs and one directory fsync a batch).
class Writer {
 public:
  Writer(certstore::FileStorage& local, const Collection& collection, Replica::Outcome& out)
      : local_(local), collection_(collection), out_(out) {}

  void add(Entry entry) {
    if (entry.broken) {
      ++out_.failedEntries;
      return;
    }
    const std::string key = collection_.name + "/" + entry.name;
    if (entry.items.empty()) {  // not in etcd: removed here
      auto there = local_.exists(key);
      if (!there) return failed(entry.name, there.error());
      if (!*there) return;
      if (Status removed = local_.remove(key); !removed) return failed(entry.name, removed.error());
      out_.changed.insert(entry.name);
      return;
    }
    if (holds(local_, key, entry)) return;
    names_.push_back(std::move(entry.name));
    pending_.push_back({key, std::move(entry.items)});
    if (pending_.size() >= static_cast<size_t>(kPage)) flush();
  }

  // Writes what was gathered. After an error, what is left goes one entry at
  // a time, so that only the entry that fails is reported and skipped.
  void flush() {
    auto written = local_.storeGroups(pending_);
    for (size_t i = 0; i < written.groups; ++i) out_.changed.insert(names_[i]);
    if (!written.status.ok()) {
      for (size_t i = written.groups; i < pending_.size(); ++i) {
        auto one = local_.storeGroups({&pending_[i], 1});
        if (one.status.ok()) {
          out_.changed.insert(names_[i]);
        } else {
          failed(names_[i], one.status.error());
        }
      }
    }
    pending_.clear();
    names_.clear();
  }

 private:
  void failed(const std::string& name, const Error& why) {
    log::warning("fleet: entry `" + name + "` not copied: " + why.message);
    ++out_.failedEntries;
  }

  certstore::FileStorage& local_;
  const Collection& collection_;
  Replica::Outcome& out_;
  std::vector<certstore::FileStorage::GroupWrite> pending_;
  std::vector<std::string> names_;
};

std::string prefixOf(const EtcdStorage& fleet, const Collection& collection) {
  return fleet.etcdKey(collection.name) + "/";
}

// Records that the copy reflects `revision` of `cluster`'s keys under
// `under`; `incomplete` (an entry that did not open since the last full
// read): no record, so that the next start reads everything again.
void record(certstore::FileStorage& local, const std::string& file, const std::string& under,
            const std::string& cluster, int64_t revision, bool incomplete) {
  if (incomplete) {
    if (Status removed = local.remove(file);
        !removed && removed.error().kind != ErrorKind::kNotFound) {
      log::warning("fleet: " + local.describe(file) + " not removed: " + removed.error().message);
    }
    return;
  }
  const nlohmann::json text{
      {"etcd_prefix", under}, {"cluster_id", cluster}, {"revision", revision}};
  if (Status written = local.store(file, text.dump() + "\n", certstore::Storage::Secrecy::kPublic);
      !written) {
    log::warning("fleet: " + local.describe(file) + " not written: " + written.error().message +
                 "; the next start reads the whole store");
  }
}

// The revision the copy recorded for `cluster`'s keys under `under`; 0: none.
int64_t recorded(const certstore::FileStorage& local, const std::string& file,
                 const std::string& under, const std::string& cluster) {
  auto text = local.load(file);
  if (!text) return 0;
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) return 0;
  auto prefix = j.find("etcd_prefix");
  auto id = j.find("cluster_id");
  auto revision = j.find("revision");
  if (prefix == j.end() || id == j.end() || revision == j.end() || *prefix != under ||
      *id != cluster || !revision->is_number_integer()) {
    return 0;
  }
  return revision->get<int64_t>();
}

// A full read's pages, handed from the thread that reads them to the one
// that opens and writes them, so that etcd's answer and the disk writes
// overlap (a new node's start was their sum). At most kAhead pages wait:
// memory stays a few pages. Its mutex is a sanctioned exception to rule 2
// (docs/principles.md): both threads are one pool job's, which joins the
// reader; no loop's state is touched.
class PageQueue {
 public:
  static constexpr size_t kAhead = 2;

  void push(std::vector<KeyValue> page) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return pages_.size() < kAhead; });
    pages_.push_back(std::move(page));
    ready_.notify_one();
  }
  void finish() {
    std::lock_guard lock(mutex_);
    finished_ = true;
    ready_.notify_one();
  }
  // The next page; none once the reader finished and every page was taken.
  std::optional<std::vector<KeyValue>> pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !pages_.empty() || finished_; });
    if (pages_.empty()) return std::nullopt;
    std::vector<KeyValue> page = std::move(pages_.front());
    pages_.pop_front();
    room_.notify_one();
    return page;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable room_;
  std::deque<std::vector<KeyValue>> pages_;
  bool finished_ = false;
};

}  // namespace

Replica::Outcome resumeOrSyncAll(const EtcdStorage& fleet, certstore::FileStorage& local,
                                 const Collection& collection, bool mayResume) {
  const std::string under = prefixOf(fleet, collection);
  EtcdClient::RangeOptions countOnly;
  countOnly.countOnly = true;
  auto head = fleet.client().range(under, prefixEnd(under), countOnly);
  if (!head) {
    Replica::Outcome out;
    out.status = head.error();
    return out;
  }
  if (mayResume) {
    const int64_t at = recorded(local, collection.record, under, head->cluster);
    auto held = local.list(collection.name);
    if (at != 0 && at <= head->revision && held && !held->empty()) {
      Replica::Outcome out;
      out.revision = at;
      out.cluster = head->cluster;
      out.resumed = true;
      return out;
    }
  }
  return syncAll(fleet, local, collection, head->cluster);
}

Replica::Outcome syncAll(const EtcdStorage& fleet, certstore::FileStorage& local,
                         const Collection& collection, const std::string& cluster) {
  Replica::Outcome out;
  out.cluster = cluster;
  out.full = true;
  const std::string under = prefixOf(fleet, collection);
  std::set<std::string> seen;
  Writer writer(local, collection, out);
  Entry current;
  auto next = [&] {
    if (current.name.empty()) return;
    seen.insert(current.name);
    writer.add(std::move(current));
    current = Entry{};
  };
  PageQueue pages;
  Result<int64_t> scanned = Error{};
  std::thread reader([&] {
    scanned = fleet.client().scan(under, false, kPage, [&](std::vector<KeyValue>& page) -> Status {
      pages.push(std::move(page));
      return Ok{};
    });
    pages.finish();
  });
  while (std::optional<std::vector<KeyValue>> page = pages.pop()) {
    for (KeyValue& kv : *page) {
      std::string_view name, file;
      if (!splitKey(kv.key, under, name, file)) continue;
      if (name != current.name) {  // keys come sorted: an entry's are adjacent
        next();
        current.name = std::string(name);
      }
      addItem(fleet, current, file, kv);
    }
  }
  reader.join();
  if (!scanned) {
    writer.flush();                // whole entries, each as of the scan's revision
    out.status = scanned.error();  // nothing removed: the read was not whole
    return out;
  }
  next();
  out.revision = *scanned;
  auto held = local.list(collection.name);
  if (held) {
    for (const std::string& name : *held) {
      if (seen.count(name) == 0) writer.add(Entry{name, {}, false});
    }
  } else if (held.error().kind != ErrorKind::kNotFound) {
    out.status = held.error();
  }
  writer.flush();
  return out;
}

Replica::Outcome syncEntries(const EtcdStorage& fleet, certstore::FileStorage& local,
                             const Collection& collection, const std::set<std::string>& names,
                             int64_t revision, const std::string& cluster) {
  Replica::Outcome out;
  out.revision = revision;
  out.cluster = cluster;
  const std::string under = prefixOf(fleet, collection);
  Writer writer(local, collection, out);
  for (const std::string& name : names) {
    const std::string group = under + name + "/";
    EtcdClient::RangeOptions at;
    at.revision = revision;
    auto read = fleet.client().range(group, prefixEnd(group), at);
    if (!read && revision != 0) {  // compacted since: the newest is as good
      read = fleet.client().range(group, prefixEnd(group), {});
    }
    if (!read) {
      writer.flush();
      out.status = read.error();
      return out;
    }
    Entry entry{name, {}, false};
    for (KeyValue& kv : read->kvs) {
      std::string_view entryName, file;
      if (splitKey(kv.key, under, entryName, file)) addItem(fleet, entry, file, kv);
    }
    writer.add(std::move(entry));
  }
  writer.flush();
  return out;
}

Replica::Replica(uv_loop_t* loop, std::shared_ptr<const EtcdStorage> fleet,
                 std::shared_ptr<certstore::FileStorage> local, Collection collection,
                 std::unique_ptr<EtcdWatch> watch, Changed changed)
    : loop_(loop),
      fleet_(std::move(fleet)),
      local_(std::move(local)),
      collection_(std::move(collection)),
      watch_(std::move(watch)),
      changed_(std::move(changed)),
      timer_(new uv_timer_t) {
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

Replica::~Replica() { close(); }

void Replica::start() { catchUp(true); }

void Replica::close() {
  if (closed_) return;
  closed_ = true;
  watch_->close();
  alive_.reset();
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(timer_), timer_);
}

void Replica::catchUp(bool mayResume) {
  busy_ = true;
  stats_.connected = false;
  queue_.clear();  // a full read covers whatever they named
  watch_->stop();
  std::shared_ptr<const EtcdStorage> fleet = fleet_;
  std::shared_ptr<certstore::FileStorage> local = local_;
  std::weak_ptr<int> alive = alive_;
  net::offload<Outcome>(
      loop_,
      [fleet, local, collection = collection_, mayResume] {
        return resumeOrSyncAll(*fleet, *local, collection, mayResume);
      },
      [this, alive](Outcome outcome) {
        if (alive.expired()) return;
        busy_ = false;
        const bool ok = outcome.status.ok();
        const bool resumed = outcome.resumed;
        const size_t written = outcome.changed.size();
        if (ok) cluster_ = outcome.cluster;
        finished(std::move(outcome));
        if (!ok) return;
        stats_.caughtUp = true;
        if (resumed) {
          log::info("fleet: the copy in " + local_->describe(collection_.name) +
                    " resumes from revision " + std::to_string(stats_.revision) + " (recorded in " +
                    local_->describe(collection_.record) +
                    "): the watch brings what changed since");
        } else {
          ++stats_.fullSyncs;
          log::info("fleet: the store is in sync with " + fleet_->describe(collection_.name) +
                    " at revision " + std::to_string(stats_.revision) + " (" +
                    std::to_string(written) + " entries written)");
        }
        watchFrom(stats_.revision + 1);
      });
}

void Replica::watchFrom(int64_t revision) {
  stats_.connected = true;
  watch_->start(
      prefixOf(*fleet_, collection_), revision,
      [this](int64_t at, std::vector<EtcdWatch::Event> events) {
        const std::string under = prefixOf(*fleet_, collection_);
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
          return busy_ ? retryLater([this] { catchUp(false); }) : catchUp(false);
        }
        log::warning("fleet: the watch ended: " + why.message + "; serving what " +
                     local_->describe(collection_.name) + " holds");
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
  std::shared_ptr<certstore::FileStorage> local = local_;
  std::weak_ptr<int> alive = alive_;
  net::offload<Outcome>(
      loop_,
      [fleet, local, collection = collection_, names = std::move(names), revision,
       cluster = cluster_] {
        return syncEntries(*fleet, *local, collection, names, revision, cluster);
      },
      [this, alive](Outcome outcome) {
        if (alive.expired()) return;
        busy_ = false;
        const bool ok = outcome.status.ok();
        finished(std::move(outcome));
        if (!ok) return;  // finished() scheduled a catch-up
        applyNext();
      });
}

void Replica::finished(Outcome outcome) {
  for (const std::string& name : outcome.changed) changed_(name);
  stats_.written += outcome.changed.size();
  stats_.failures += outcome.failedEntries;
  if (outcome.status.ok()) {
    stats_.revision = std::max(stats_.revision, outcome.revision);
    if (outcome.failedEntries != 0) {
      incomplete_ = true;
    } else if (outcome.full) {
      incomplete_ = false;
    }
    if (!outcome.resumed) recordCopy();
    return;
  }
  ++stats_.failures;
  log::warning("fleet: reading " + fleet_->describe(collection_.name) +
               " failed: " + outcome.status.error().message + "; serving what " +
               local_->describe(collection_.name) + " holds");
  retryLater([this] { catchUp(true); });
}

// After the entries are applied (so that the write takes nothing from an
// upload's way to handshakes), on the pool. Records may land out of order
// or be lost: an older one only replays more at the next start.
void Replica::recordCopy() {
  if (cluster_.empty() || stats_.revision == 0) return;
  std::shared_ptr<certstore::FileStorage> local = local_;
  net::offload<int>(
      loop_,
      [local, file = collection_.record, under = prefixOf(*fleet_, collection_), cluster = cluster_,
       revision = stats_.revision, incomplete = incomplete_] {
        record(*local, file, under, cluster, revision, incomplete);
        return 0;
      },
      [](int) {});
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
