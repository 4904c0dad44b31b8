// ShardedIndex: an immutable, persistent string -> value map for certificate
// snapshots, updated in O(changed) with everything else shared.
//
// Layout: the 64-bit hash of the key picks one of 256 branches (top byte)
// and one of 256 shards inside it (next byte): 65,536 shards in all. A shard
// is a small vector of (key, value) sorted by key; branches and shards are
// shared_ptr<const ...>, never modified once published. A null branch or
// shard is empty (a small store costs nothing for the shards it does not use).
//
// Why this and not a HAMT: two fixed levels give a lookup of two pointer
// loads plus a binary search over ~16 entries at a million keys, no
// popcount/bitmap decoding, and the update cost is easy to state and bound:
//   set/erase one key = copy the root (256 pointers, inside the index
//   object), one branch (256 pointers) and one shard (its entries):
//   O(512 + shard size) pointer copies, about 8 KiB + one shard, whatever
//   the number of keys. At 1M keys a shard holds ~15 entries.
// A HAMT would copy less per level at small sizes but needs more levels and
// more branches per lookup; with a fixed fan-out the worst case is flat.
//
// Thread: built and edited on one thread (the control loop); a built index
// is immutable and readable from any thread. find() is lock-free and
// allocation-free; it returns a pointer into the index, valid while the index
// (or any copy sharing the shard) lives.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tlsedge::certstore {

template <class V>
class ShardedIndex {
 public:
  static constexpr size_t kBranches = 256;
  static constexpr size_t kShardsPerBranch = 256;
  static constexpr size_t kShards = kBranches * kShardsPerBranch;

  using Entry = std::pair<std::string, V>;
  using Shard = std::vector<Entry>;  // sorted by key
  using ShardPtr = std::shared_ptr<const Shard>;
  using Branch = std::array<ShardPtr, kShardsPerBranch>;
  using BranchPtr = std::shared_ptr<const Branch>;

  // Bulk construction: O(n log(shard size)); duplicate keys keep the first.
  static ShardedIndex build(std::vector<Entry> entries) {
    ShardedIndex index;
    std::vector<std::vector<Entry>> buckets(kShards);
    for (Entry& e : entries) buckets[shardOf(hashOf(e.first))].push_back(std::move(e));
    for (size_t b = 0; b < kBranches; ++b) {
      std::shared_ptr<Branch> branch;
      for (size_t s = 0; s < kShardsPerBranch; ++s) {
        auto& bucket = buckets[b * kShardsPerBranch + s];
        if (bucket.empty()) continue;
        std::stable_sort(bucket.begin(), bucket.end(),
                         [](const Entry& x, const Entry& y) { return x.first < y.first; });
        bucket.erase(std::unique(bucket.begin(), bucket.end(),
                                 [](const Entry& x, const Entry& y) { return x.first == y.first; }),
                     bucket.end());
        index.size_ += bucket.size();
        if (!branch) branch = std::make_shared<Branch>();
        (*branch)[s] = std::make_shared<const Shard>(std::move(bucket));
      }
      index.root_[b] = std::move(branch);
    }
    return index;
  }

  // Null if absent. Lock-free, allocation-free.
  const V* find(std::string_view key) const noexcept {
    const uint64_t h = hashOf(key);
    const Branch* branch = root_[h >> 56].get();
    if (branch == nullptr) return nullptr;
    const Shard* shard = (*branch)[(h >> 48) & 0xff].get();
    if (shard == nullptr) return nullptr;
    auto it = std::lower_bound(shard->begin(), shard->end(), key,
                               [](const Entry& e, std::string_view k) { return e.first < k; });
    if (it == shard->end() || it->first != key) return nullptr;
    return &it->second;
  }

  // A copy sharing every shard but the key's, with `key` set to `value`.
  // Adds to *bytesCopied (if given) what the path copy cost.
  ShardedIndex set(std::string_view key, V value, size_t* bytesCopied = nullptr) const {
    return edit(key, bytesCopied, [&](Shard& shard, typename Shard::iterator it, bool found) {
      if (found) {
        it->second = std::move(value);
        return 0;
      }
      shard.insert(it, Entry(std::string(key), std::move(value)));
      return 1;
    });
  }

  // A copy sharing every shard but the key's, without `key`.
  ShardedIndex erase(std::string_view key, size_t* bytesCopied = nullptr) const {
    if (find(key) == nullptr) return *this;
    return edit(key, bytesCopied, [](Shard& shard, typename Shard::iterator it, bool found) {
      if (!found) return 0;
      shard.erase(it);
      return -1;
    });
  }

  size_t size() const { return size_; }

  // Calls fn(key, value) for every entry (control loop: listings, tests).
  template <class Fn>
  void forEach(Fn&& fn) const {
    for (const BranchPtr& branch : root_) {
      if (!branch) continue;
      for (const ShardPtr& shard : *branch) {
        if (!shard) continue;
        for (const Entry& e : *shard) fn(e.first, e.second);
      }
    }
  }

  // The shard holding `key` (may be null): tests check sharing with it.
  const Shard* shardFor(std::string_view key) const {
    const uint64_t h = hashOf(key);
    const Branch* branch = root_[h >> 56].get();
    return branch == nullptr ? nullptr : (*branch)[(h >> 48) & 0xff].get();
  }
  // Every shard pointer in index order (null for empty ones): tests.
  std::vector<const Shard*> shards() const {
    std::vector<const Shard*> out(kShards, nullptr);
    for (size_t b = 0; b < kBranches; ++b) {
      if (!root_[b]) continue;
      for (size_t s = 0; s < kShardsPerBranch; ++s)
        out[b * kShardsPerBranch + s] = (*root_[b])[s].get();
    }
    return out;
  }

 private:
  static uint64_t hashOf(std::string_view key) noexcept {
    // libstdc++'s is a murmur-style 64-bit hash: both bytes used are well mixed.
    return static_cast<uint64_t>(std::hash<std::string_view>{}(key));
  }
  static size_t shardOf(uint64_t h) noexcept { return static_cast<size_t>(h >> 48); }

  template <class Change>
  ShardedIndex edit(std::string_view key, size_t* bytesCopied, Change&& change) const {
    const uint64_t h = hashOf(key);
    const size_t b = h >> 56;
    const size_t s = (h >> 48) & 0xff;
    ShardedIndex copy = *this;  // the root: 256 shared_ptr copies
    auto branch = root_[b] ? std::make_shared<Branch>(*root_[b]) : std::make_shared<Branch>();
    auto shard = (*branch)[s] ? std::make_shared<Shard>(*(*branch)[s]) : std::make_shared<Shard>();
    auto it = std::lower_bound(shard->begin(), shard->end(), key,
                               [](const Entry& e, std::string_view k) { return e.first < k; });
    const bool found = it != shard->end() && it->first == key;
    const int delta = change(*shard, it, found);
    copy.size_ = static_cast<size_t>(static_cast<ptrdiff_t>(size_) + delta);
    if (bytesCopied != nullptr) {
      size_t keys = 0;
      for (const Entry& e : *shard) keys += e.first.capacity() > 15 ? e.first.size() : 0;
      *bytesCopied += sizeof(root_) + sizeof(Branch) + shard->size() * sizeof(Entry) + keys;
    }
    (*branch)[s] = shard->empty() ? nullptr : ShardPtr(std::move(shard));
    copy.root_[b] = std::move(branch);
    return copy;
  }

  std::array<BranchPtr, kBranches> root_{};
  size_t size_ = 0;
};

}  // namespace tlsedge::certstore
