#include "fleet/import.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "certstore/files.h"
#include "fleet/collection.h"

namespace tlsedge::fleet {

namespace {

namespace fs = std::filesystem;
using Item = certstore::Storage::Item;
using Secrecy = certstore::Storage::Secrecy;

constexpr size_t kMaxBatchBytes = 1 << 20;  // etcd's default request limit is 1.5 MiB

// What is copied as one: a certificate entry (a group of files) or one value.
struct Unit {
  std::string key;  // "certs/shop", "sites/news", "acme/sites/shop.json"
  bool group = false;
  std::vector<std::string> files;  // group: the names in it; value: {""}
};

std::string pathOf(const std::string& stateDir, const Unit& unit, const std::string& file) {
  return stateDir + "/" + unit.key + (file.empty() ? "" : "/" + file);
}

bool hidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return name.empty() || name[0] == '.';
}

// The groups of collection `name` (certs/NAME, sites/NAME) into `units`.
Status findGroups(const std::string& stateDir, const std::string& name, std::vector<Unit>& units) {
  std::error_code ec;
  const fs::path dir = fs::path(stateDir) / name;
  if (!fs::is_directory(dir, ec)) return Ok{};
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (hidden(entry.path()) || !entry.is_directory()) continue;
    Unit unit{name + "/" + entry.path().filename().string(), true, {}};
    for (const auto& file : fs::directory_iterator(entry.path(), ec)) {
      if (!hidden(file.path()) && file.is_regular_file()) {
        unit.files.push_back(file.path().filename().string());
      }
    }
    std::sort(unit.files.begin(), unit.files.end());
    if (!unit.files.empty()) units.push_back(std::move(unit));
  }
  if (ec) return makeError("cannot read " + dir.string() + ": " + ec.message());
  return Ok{};
}

bool isSite(const std::string& key) { return key.starts_with(kSites.name + "/"); }

// The units of `stateDir`, in key order.
Result<std::vector<Unit>> findUnits(const std::string& stateDir) {
  std::vector<Unit> units;
  for (const Collection* collection : {&kCertificates, &kSites}) {
    if (Status found = findGroups(stateDir, collection->name, units); !found) return found.error();
  }
  std::error_code ec;
  const fs::path acme = fs::path(stateDir) / "acme";
  if (fs::is_directory(acme, ec)) {
    auto it = fs::recursive_directory_iterator(acme, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::path rel = fs::relative(it->path(), stateDir);
      if (hidden(it->path()) || rel == "acme/challenges") {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file()) units.push_back({rel.string(), false, {""}});
    }
    if (ec) return makeError("cannot read " + acme.string() + ": " + ec.message());
  }
  std::sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) { return a.key < b.key; });
  return units;
}

// The unit's files read, each kSecret when others cannot read it (0600).
Result<std::vector<Item>> readUnit(const std::string& stateDir, const Unit& unit) {
  std::vector<Item> items;
  for (const std::string& file : unit.files) {
    const std::string path = pathOf(stateDir, unit, file);
    auto text = certstore::readFile(path);
    if (!text) return text.error();
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return makeError("cannot stat " + path);
    items.push_back(
        {file, std::move(*text), (st.st_mode & 077) == 0 ? Secrecy::kSecret : Secrecy::kPublic});
  }
  return items;
}

// The storage keys etcd holds under the fleet's prefix, and the groups
// (certs/NAME, sites/NAME) they make.
Result<std::set<std::string>> heldKeys(const EtcdStorage& fleet) {
  std::set<std::string> held;
  const std::string under = fleet.prefix() + "/";
  auto scanned = fleet.client().scan(under, true, 1000, [&](std::vector<KeyValue>& page) {
    for (const KeyValue& kv : page) {
      const std::string key = kv.key.substr(under.size());
      held.insert(key);
      for (const Collection* collection : {&kCertificates, &kSites}) {
        const std::string group = collection->name + "/";
        if (key.starts_with(group)) held.insert(key.substr(0, key.find('/', group.size())));
      }
    }
    return Status(Ok{});
  });
  if (!scanned) return scanned.error();
  return held;
}

class Importer {
 public:
  Importer(const std::string& stateDir, EtcdStorage& fleet, bool replace,
           const std::function<void(size_t)>& progress)
      : stateDir_(stateDir), fleet_(fleet), replace_(replace), progress_(progress) {}

  Status run(const std::vector<Unit>& units, const std::set<std::string>& held) {
    for (const Unit& unit : units) {
      auto items = readUnit(stateDir_, unit);
      if (!items) return items.error();
      if (held.count(unit.key) != 0) {
        if (Status done = over(unit, *items); !done) return done;
        continue;
      }
      size_t bytes = 0;
      for (const Item& item : *items) bytes += item.value.size();
      if (batch_.size() + items->size() > EtcdStorage::kMaxTxnValues ||
          batchBytes_ + bytes > kMaxBatchBytes) {
        if (Status flushed = flush(); !flushed) return flushed;
      }
      for (Item& item : *items) {
        batch_.push_back({item.name.empty() ? unit.key : unit.key + "/" + item.name,
                          std::move(item.value), item.secrecy});
      }
      batchUnits_.push_back(&unit);
      batchBytes_ += bytes;
    }
    return flush();
  }

  ImportReport report;

 private:
  // A unit etcd holds already: kept, or written over.
  Status over(const Unit& unit, const std::vector<Item>& items) {
    if (!replace_) {
      report.kept.push_back(unit.key);
      return Ok{};
    }
    if (unit.group) {
      auto stored = fleet_.storeGroup(unit.key, items, true);
      if (!stored) return stored.error();
    } else if (Status stored = fleet_.store(unit.key, items.front().value, items.front().secrecy);
               !stored) {
      return stored;
    }
    report.replaced.push_back(unit.key);
    return Ok{};
  }

  void count(const Unit& unit) {
    ++(isSite(unit.key) ? report.sites : unit.group ? report.entries : report.values);
  }

  Status flush() {
    if (batch_.empty()) return Ok{};
    auto created = fleet_.createAll(batch_);
    if (!created) return created.error();
    if (*created) {
      for (const Unit* unit : batchUnits_) count(*unit);
    } else {  // a node wrote one of these meanwhile: one at a time, to say which
      for (const Unit* unit : batchUnits_) {
        if (Status one = single(*unit); !one) return one;
      }
    }
    batch_.clear();
    batchUnits_.clear();
    batchBytes_ = 0;
    if (progress_) progress_(report.entries + report.sites + report.values);
    return Ok{};
  }

  Status single(const Unit& unit) {
    auto items = readUnit(stateDir_, unit);
    if (!items) return items.error();
    Status written = Ok{};
    if (unit.group) {
      auto stored = fleet_.storeGroup(unit.key, *items, false);
      if (!stored) written = stored.error();
    } else {
      written = fleet_.create(unit.key, items->front().value, items->front().secrecy);
    }
    if (!written && written.error().kind == ErrorKind::kConflict) return over(unit, *items);
    if (written) count(unit);
    return written;
  }

  const std::string& stateDir_;
  EtcdStorage& fleet_;
  const bool replace_;
  const std::function<void(size_t)>& progress_;
  std::vector<EtcdStorage::Value> batch_;
  std::vector<const Unit*> batchUnits_;
  size_t batchBytes_ = 0;
};

}  // namespace

Result<ImportReport> importStateDirectory(const std::string& stateDir, EtcdStorage& fleet,
                                          bool replace,
                                          const std::function<void(size_t)>& progress) {
  auto units = findUnits(stateDir);
  if (!units) return units.error();
  auto held = heldKeys(fleet);
  if (!held) return held.error();
  Importer importer(stateDir, fleet, replace, progress);
  if (Status done = importer.run(*units, *held); !done) return done.error();
  return std::move(importer.report);
}

}  // namespace tlsedge::fleet
