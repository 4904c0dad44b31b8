// FileStorage: Storage on a directory (the state directory, default
// ./tlsedge-state). A key is the path under it. A value is a file written
// by writeFileAtomic (0600 for kSecret, 0644 otherwise). A group is a
// directory: storeGroup writes it complete as a temporary directory beside
// the target (".tmp-NAME-PID-N"), then renames it into place, or exchanges
// it with the old one (renameat2 RENAME_EXCHANGE), and fsyncs the parent;
// remove renames the group away (".rm-NAME-PID-N") before deleting it.
// Names starting with '.' are temporaries: never listed, and deleted by the
// next group write or removal in that directory once the process that made
// them is gone.
//
// Thread: any (see storage.h); one writer per key at a time.
#pragma once

#include <span>

#include "certstore/storage.h"

namespace tlsedge::certstore {

class FileStorage final : public Storage {
 public:
  explicit FileStorage(std::string root) : root_(std::move(root)) {}
  static StoragePtr open(std::string root) {
    return std::make_shared<FileStorage>(std::move(root));
  }

  Result<std::string> load(std::string_view key) const override;
  Status store(std::string_view key, std::string_view value, Secrecy secrecy) override;
  Status create(std::string_view key, std::string_view value, Secrecy secrecy) override;
  Result<bool> storeGroup(std::string_view key, const std::vector<Item>& items,
                          bool replace) override;

  // Several groups at once, each as storeGroup(key, items, true) writes it,
  // made durable together: every group written beside its target, one
  // syncfs(2), every rename, one fsync of each parent directory (an fsync
  // per file made a replica's first copy of 100k entries take hours); under
  // 16 groups each file is fsynced instead, as syncfs would also flush what
  // else the filesystem holds dirty. A
  // crash leaves each group old or new, whole. Stops at the first error:
  // `groups` says how many (the first ones) were written, `replaced` which
  // of them replaced a group.
  struct GroupWrite {
    std::string key;
    std::vector<Item> items;
  };
  struct Written {
    size_t groups = 0;
    std::vector<bool> replaced;
    Status status = Ok{};
  };
  Written storeGroups(std::span<const GroupWrite> groups);
  Status remove(std::string_view key) override;
  Result<bool> exists(std::string_view key) const override;
  Result<std::vector<std::string>> list(std::string_view key) const override;
  std::string describe(std::string_view key) const override { return path(key); }

  // Creates directory `key` ("certs"), and the root and the directories
  // above it, mode 0700; one that exists already is left as it is.
  Status makeDirectory(std::string_view key) const;
  // Deletes the temporaries in directory `key` ("certs") whose process is
  // gone (storeGroup and remove do it first there). Returns how many.
  size_t removeStaleTemporaries(std::string_view key) const;
  const std::string& root() const { return root_; }

 private:
  std::string path(std::string_view key) const { return root_ + "/" + std::string(key); }
  Written writeGroups(std::span<const GroupWrite> groups, bool replace, bool batch);
  // A new directory `temp` holding `items`; `sync`: each file and it fsynced.
  Status writeGroupDirectory(const std::string& temp, const std::string& target,
                             const std::vector<Item>& items, bool sync) const;
  Status makeRoot() const;
  std::string root_;
};

}  // namespace tlsedge::certstore
