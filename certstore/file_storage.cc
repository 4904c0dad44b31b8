#include "certstore/file_storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "certstore/files.h"

namespace tlsedge::certstore {
namespace {

bool isDirectory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string uniqueSuffix() {
  static std::atomic<unsigned> counter{0};
  return std::to_string(getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

void removeTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

// "certs/shop" -> {"certs", "shop"}; a key without '/' has the root as parent.
std::pair<std::string_view, std::string_view> splitKey(std::string_view key) {
  const size_t slash = key.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

// The PID in a temporary's name ".tmp-NAME-PID-N" / ".rm-NAME-PID-N" (the
// name in between may hold '-'), or 0.
pid_t temporaryOwner(const std::string& name) {
  if (name.rfind(".tmp-", 0) != 0 && name.rfind(".rm-", 0) != 0) return 0;
  const size_t last = name.rfind('-');
  const size_t before =
      last == std::string::npos || last == 0 ? std::string::npos : name.rfind('-', last - 1);
  if (before == std::string::npos) return 0;
  const std::string pid = name.substr(before + 1, last - before - 1);
  if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) {
    return 0;
  }
  return static_cast<pid_t>(std::stol(pid));
}

}  // namespace

Status checkStorageKey(std::string_view key) {
  if (key.empty()) return makeError("storage key: empty", ErrorKind::kInvalid);
  size_t start = 0;
  for (;;) {
    const size_t slash = key.find('/', start);
    const std::string_view name = key.substr(start, slash - start);
    if (name.empty() || name[0] == '.') {
      return makeError("storage key `" + std::string(key) + "`: the name `" + std::string(name) +
                           "` is empty or starts with '.'",
                       ErrorKind::kInvalid);
    }
    if (slash == std::string_view::npos) return Ok{};
    start = slash + 1;
  }
}

Result<std::string> FileStorage::load(std::string_view key) const {
  if (Status valid = checkStorageKey(key); !valid.ok()) return valid.error();
  auto text = readFile(path(key));
  if (text.ok()) return text;
  auto there = exists(key);
  if (there && !*there) return makeError(text.error().message, ErrorKind::kNotFound);
  return text;
}

Status FileStorage::store(std::string_view key, std::string_view value, Secrecy secrecy) {
  if (Status valid = checkStorageKey(key); !valid.ok()) return valid;
  return writeFileAtomic(path(key), std::string(value), secrecy == Secrecy::kSecret ? 0600 : 0644);
}

Status FileStorage::create(std::string_view key, std::string_view value, Secrecy secrecy) {
  if (Status valid = checkStorageKey(key); !valid.ok()) return valid;
  return writeFileAtomic(path(key), std::string(value), secrecy == Secrecy::kSecret ? 0600 : 0644,
                         /*create=*/true);
}

Result<bool> FileStorage::storeGroup(std::string_view key, const std::vector<Item>& items,
                                     bool replace) {
  const GroupWrite group{std::string(key), items};
  Written written = writeGroups({&group, 1}, replace, /*batch=*/false);
  if (!written.status.ok()) return written.status.error();
  return static_cast<bool>(written.replaced.front());
}

FileStorage::Written FileStorage::storeGroups(std::span<const GroupWrite> groups) {
  // A few groups: an fsync each file is cheaper than syncfs, which also
  // flushes whatever else (access logs) the filesystem holds dirty.
  constexpr size_t kSyncfsFrom = 16;
  return writeGroups(groups, /*replace=*/true, /*batch=*/groups.size() >= kSyncfsFrom);
}

// Each group is written complete as a temporary directory beside its
// target, then renamed into place (or exchanged with the old group, which
// serves until then), then the parent directory is fsynced. The files and
// the temporary directory must be durable before the rename: one at a time
// (fsync each), or for a batch all at once (one syncfs) before any rename.
FileStorage::Written FileStorage::writeGroups(std::span<const GroupWrite> groups, bool replace,
                                              bool batch) {
  Written out;
  std::vector<std::string> temps;  // [i]: group i's temporary; after an exchange, the old group
  std::set<std::string> parents;
  auto finish = [&](Status status) {
    for (const std::string& parent : parents) {  // renames durable before old groups go
      if (Status synced = syncDirectory(parent); !synced.ok() && status.ok()) status = synced;
    }
    for (const std::string& temp : temps) removeTree(temp);
    out.status = std::move(status);
    if (!out.status.ok()) out.replaced.resize(out.groups);
    return std::move(out);
  };
  for (const GroupWrite& group : groups) {
    if (Status valid = checkStorageKey(group.key); !valid.ok()) return finish(valid);
    const auto [parentKey, name] = splitKey(group.key);
    const std::string parent = parentKey.empty() ? root_ : path(parentKey);
    if (parents.insert(parent).second) {
      Status made = parentKey.empty() ? makeRoot() : makeDirectory(parentKey);
      if (!made.ok()) return finish(made);
      removeStaleTemporaries(parentKey);
    }
    const std::string target = path(group.key);
    if (!replace && isDirectory(target)) {
      return finish(makeError(target + " exists", ErrorKind::kConflict));
    }
    temps.push_back(parent + "/.tmp-" + std::string(name) + "-" + uniqueSuffix());
    if (Status w = writeGroupDirectory(temps.back(), target, group.items, !batch); !w.ok()) {
      return finish(w);
    }
  }
  if (batch && !groups.empty()) {
    if (Status synced = syncFilesystem(root_); !synced.ok()) return finish(synced);
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    const std::string target = path(groups[i].key);
    const bool existed = isDirectory(target);
    if (existed) {
      // Both directories swap in one step: the old group serves until then.
      if (renameat2(AT_FDCWD, temps[i].c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
        return finish(makeError("cannot replace " + target + ": " + std::strerror(errno)));
      }
    } else if (rename(temps[i].c_str(), target.c_str()) != 0) {
      const int err = errno;
      return finish(
          makeError("cannot create " + target + ": " + std::strerror(err),
                    err == EEXIST || err == ENOTEMPTY ? ErrorKind::kConflict : ErrorKind::kFailed));
    }
    out.replaced.push_back(existed);
    ++out.groups;
  }
  return finish(Ok{});
}

Status FileStorage::writeGroupDirectory(const std::string& temp, const std::string& target,
                                        const std::vector<Item>& items, bool sync) const {
  if (::mkdir(temp.c_str(), 0700) != 0) {
    return makeError("cannot create " + temp + ": " + std::strerror(errno));
  }
  for (const Item& item : items) {
    if (item.name.empty() || item.name[0] == '.' || item.name.find('/') != std::string::npos) {
      return makeError("storage group " + target + ": bad item name `" + item.name + "`",
                       ErrorKind::kInvalid);
    }
    const unsigned mode = item.secrecy == Secrecy::kSecret ? 0600 : 0644;
    if (Status w = writeNewFile(temp + "/" + item.name, item.value, mode, sync); !w.ok()) return w;
  }
  return sync ? syncDirectory(temp) : Status(Ok{});
}

Status FileStorage::makeRoot() const {
  if (::mkdir(root_.c_str(), 0700) != 0 && errno != EEXIST) {
    return makeError("cannot create " + root_ + ": " + std::strerror(errno));
  }
  return Ok{};
}

Status FileStorage::makeDirectory(std::string_view key) const {
  if (Status valid = checkStorageKey(key); !valid.ok()) return valid;
  std::vector<std::string> dirs = {root_};  // each before the ones inside it
  for (size_t slash = key.find('/');; slash = key.find('/', slash + 1)) {
    dirs.push_back(path(key.substr(0, slash)));
    if (slash == std::string_view::npos) break;
  }
  for (const std::string& dir : dirs) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return makeError("cannot create " + dir + ": " + std::strerror(errno));
    }
  }
  return Ok{};
}

Status FileStorage::remove(std::string_view key) {
  if (Status valid = checkStorageKey(key); !valid.ok()) return valid;
  const auto [parentKey, name] = splitKey(key);
  const std::string parent = parentKey.empty() ? root_ : path(parentKey);
  const std::string target = path(key);
  auto there = exists(key);
  if (!there) return there.error();
  if (!*there) return makeError(target + " does not exist", ErrorKind::kNotFound);
  removeStaleTemporaries(parentKey);
  const std::string doomed = parent + "/.rm-" + std::string(name) + "-" + uniqueSuffix();
  if (rename(target.c_str(), doomed.c_str()) != 0) {
    return makeError("cannot remove " + target + ": " + std::strerror(errno));
  }
  Status synced = syncDirectory(parent);
  removeTree(doomed);
  return synced;
}

Result<bool> FileStorage::exists(std::string_view key) const {
  if (Status valid = checkStorageKey(key); !valid) return valid.error();
  struct stat st {};
  const std::string at = path(key);
  if (stat(at.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return makeError("cannot look at " + at + ": " + std::strerror(errno));
}

Result<std::vector<std::string>> FileStorage::list(std::string_view key) const {
  std::vector<std::string> out;
  const std::string dirPath = key.empty() ? root_ : path(key);
  DIR* dir = opendir(dirPath.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return out;
    return makeError("cannot list " + dirPath + ": " + std::strerror(errno));
  }
  while (const dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (!name.empty() && name[0] != '.')
      out.push_back(std::move(name));  // not ".", "..", temporaries
  }
  closedir(dir);
  std::sort(out.begin(), out.end());
  return out;
}

size_t FileStorage::removeStaleTemporaries(std::string_view key) const {
  const std::string dirPath = key.empty() ? root_ : path(key);
  std::vector<std::string> stale;
  DIR* dir = opendir(dirPath.c_str());
  if (dir == nullptr) return 0;
  while (const dirent* entry = readdir(dir)) {
    const pid_t pid = temporaryOwner(entry->d_name);
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH)
      stale.push_back(dirPath + "/" + entry->d_name);
  }
  closedir(dir);
  for (const std::string& doomed : stale) removeTree(doomed);
  return stale.size();
}

}  // namespace tlsedge::certstore
