// ShardedIndex: an immutable, persistent string -> value map for certificate
// snapshots, updated in O(changed) with everything else shared.
//
// Layout: the 64-bit hash of the key picks one of 128 branches (top 7
// bits) and one of 128 shards inside it (next 7): 16,384 shards in all. A
// branch is 128 one-word references to shards (the shard's pointer with
// its capacity in the top 16 bits; reference counts are in the shards);
// branches are shared_ptr<const Branch>, allocated in the shards' arena;
// nothing is modified once published. A null branch or shard is empty (a
// small store costs nothing for the shards it does not use).
//
// A shard is one 64-byte-aligned block of the ShardArena (shard_arena.h:
// transparent huge pages, size classes), built whole and never changed:
// a one-line header (count, capacity, reference count), then an open-
// addressing table of at least 2 x count slots (every slot the block's
// size class leaves room for; linear probing from a home slot
// picked by the low 32 bits of the hash), then the keys too long to inline.
// A slot is the value, the key's length and the key itself when it fits
// (30 bytes beside a 32-byte value: every host name up to 30 characters),
// else the key's offset in the tail; slots are a multiple of 32 bytes and
// aligned, so the host index's 64-byte slots are one cache line each.
// A lookup reads the root (inside the index), one branch word, then the
// home slot and, half the time or less, the next: one dependent miss into
// the big part of the index instead of a chain of them. A miss stops at the
// first empty slot (the table is at most half full).
// (Before: sorted vectors of (std::string, value), a binary search of
// dependent misses plus a heap miss per long key: ~1.1 us at 1M
// certificates. Tried and measured, see docs/benchmarks.md: per-shard
// 16-bit tags scanned before the slots; a 128-bit filter per branch entry.)
//
// Why this and not a HAMT: two fixed levels give a lookup of two pointer
// loads plus one probe, no popcount/bitmap decoding, and the update cost
// is easy to state and bound:
//   set/erase one key = copy the root (128 pointers, inside the index
//   object), one branch (128 x 8 bytes) and rebuild one shard (its
//   entries): about 3 KiB + one shard, whatever the number of keys.
//
// Why 16,384 shards and not more: the shard words of all branches (128 KiB)
// stay in the L2 cache while the slots stream through it, so a lookup's only
// DRAM read is its home slot; with 65,536 shards the 512 KiB of words missed
// L2 often enough to cost ~10% at 1M. Shards are then ~128 keys at 1M
// certificates (2M host keys), and rebuilding one is still ~20 us.
//
// Thread: built and edited on one thread (the control loop); a built index
// is immutable and readable from any thread, and may be dropped on any
// thread (shard reference counts are atomic). find() is lock-free and
// allocation-free; it returns a pointer into the index, valid while the
// index (or any copy sharing the shard) lives. Keys are at most 65,534 bytes
// (longer ones throw std::length_error on the control loop).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "certstore/shard_arena.h"

namespace tlsedge::certstore {

template <class V>
class ShardedIndex {
  static_assert(std::is_nothrow_copy_constructible_v<V> && std::is_nothrow_move_constructible_v<V>,
                "shards are rebuilt by copying values");
  static_assert(alignof(V) <= 32, "a slot is aligned to at most 32 bytes");
  class ShardRef;  // a branch word (below)

 public:
  static constexpr unsigned kBranchBits = 7;  // top bits of the hash
  static constexpr unsigned kShardBits = 7;   // the next ones
  static constexpr size_t kBranches = size_t{1} << kBranchBits;
  static constexpr size_t kShardsPerBranch = size_t{1} << kShardBits;
  static constexpr size_t kShards = kBranches * kShardsPerBranch;
  static constexpr size_t kMaxKeyLength = 65534;
  static constexpr unsigned kPointerBits = 48;

  using Entry = std::pair<std::string, V>;

  // One shard (see the header comment). Opaque outside the index except for
  // identity (sharing tests) and read-only iteration.
  class Shard {
   public:
    // Keys stored in the slot itself; longer ones live in the shard's tail.
    static constexpr size_t kInlineKey =
        (sizeof(V) + sizeof(uint16_t) + 16 + 31) / 32 * 32 - sizeof(V) - sizeof(uint16_t);

    size_t size() const noexcept { return count_; }
    size_t capacity() const noexcept { return capacity_; }
    size_t bytes() const noexcept { return bytes_; }
    // Slot i (0 <= i < capacity()) may be empty.
    bool occupied(size_t i) const noexcept { return slots()[i].length != kEmpty; }
    std::string_view keyAt(size_t i) const noexcept { return slots()[i].key(tail()); }
    const V& valueAt(size_t i) const noexcept { return slots()[i].value(); }

    // Linear probing from the key's home slot; reads slots only (the
    // capacity comes from the branch entry, not from this header).
    const V* find(std::string_view key, uint64_t hash, uint32_t capacity) const noexcept {
      const Slot* slots = this->slots();
      const char* tail = reinterpret_cast<const char*>(slots + capacity);
      for (uint32_t i = homeOf(hash, capacity);;) {
        const Slot& slot = slots[i];
        if (slot.length == kEmpty) return nullptr;
        if (slot.matches(key, tail)) return &slot.value();
        if (++i == capacity) i = 0;
      }
    }

   private:
    friend class ShardedIndex;
    static constexpr uint16_t kEmpty = 0xffff;

    const void* homeSlot(uint64_t hash, uint32_t capacity) const noexcept {
      return slots() + homeOf(hash, capacity);
    }
    static constexpr size_t kMaxCapacity = 0xffff;  // kept in a ShardRef's top 16 bits

    // Trivial: the value is constructed in `storage` only in occupied slots.
    struct Slot {
      alignas(V) unsigned char storage[sizeof(V)];
      uint16_t length;             // kEmpty: a free slot
      char inlineKey[kInlineKey];  // the key, or (if longer) its uint32 offset in the tail

      const V& value() const noexcept { return *std::launder(reinterpret_cast<const V*>(storage)); }
      std::string_view key(const char* tail) const noexcept {
        if (length <= kInlineKey) return {inlineKey, length};
        uint32_t offset;
        std::memcpy(&offset, inlineKey, sizeof offset);
        return {tail + offset, length};
      }
      bool matches(std::string_view k, const char* tail) const noexcept {
        if (k.size() != length) return false;
        const char* at = inlineKey;
        if (length > kInlineKey) {
          uint32_t offset;
          std::memcpy(&offset, inlineKey, sizeof offset);
          at = tail + offset;
        }
        return std::memcmp(at, k.data(), length) == 0;
      }
    };
    static_assert(sizeof(Slot) % 32 == 0, "slots are whole half cache lines");
    static constexpr size_t kHeader = 64;  // slots start one cache line in

    // Home slot: the low 32 bits of the hash scaled to [0, capacity).
    static uint32_t homeOf(uint64_t hash, uint32_t capacity) noexcept {
      return static_cast<uint32_t>(((hash & 0xffffffffu) * capacity) >> 32);
    }
    const Slot* slots() const noexcept {
      return reinterpret_cast<const Slot*>(reinterpret_cast<const char*>(this) + kHeader);
    }
    const char* tail() const noexcept { return reinterpret_cast<const char*>(slots() + capacity_); }

    // A new shard (reference count 1) holding `items`, keys distinct, at
    // most half full; the values are moved in. Keys need only outlive the call.
    static Shard* make(std::vector<std::pair<std::string_view, V>>& items) {
      size_t tailBytes = 0;
      for (const auto& item : items) {
        if (item.first.size() > kMaxKeyLength) {
          throw std::length_error("ShardedIndex: key of " + std::to_string(item.first.size()) +
                                  " bytes (at most 65,534)");
        }
        if (item.first.size() > kInlineKey) tailBytes += item.first.size();
      }
      const size_t count = items.size();
      if (2 * count > kMaxCapacity) {
        throw std::length_error("ShardedIndex: " + std::to_string(count) + " keys in one shard");
      }
      // At least 2 x count slots; the arena's size-class rounding becomes
      // spare slots (a shorter probe), not waste.
      const size_t bytes = ShardArena::usableSize(kHeader + 2 * count * sizeof(Slot) + tailBytes);
      const size_t capacity = std::min(kMaxCapacity, (bytes - kHeader - tailBytes) / sizeof(Slot));
      char* raw = static_cast<char*>(ShardArena::instance().allocate(bytes));
      auto* shard = new (raw) Shard(count, capacity, bytes);
      auto* slots = reinterpret_cast<Slot*>(raw + kHeader);
      for (size_t i = 0; i < capacity; ++i) new (&slots[i]) Slot{{}, kEmpty, {}};
      char* tail = reinterpret_cast<char*>(slots + capacity);
      uint32_t tailUsed = 0;
      for (auto& [key, value] : items) {
        uint32_t i = homeOf(hashOf(key), static_cast<uint32_t>(capacity));
        while (slots[i].length != kEmpty) i = i + 1 == capacity ? 0 : i + 1;
        Slot& slot = slots[i];
        new (slot.storage) V(std::move(value));
        slot.length = static_cast<uint16_t>(key.size());
        if (key.size() <= kInlineKey) {
          if (!key.empty()) std::memcpy(slot.inlineKey, key.data(), key.size());
        } else {
          std::memcpy(tail + tailUsed, key.data(), key.size());
          std::memcpy(slot.inlineKey, &tailUsed, sizeof tailUsed);
          tailUsed += static_cast<uint32_t>(key.size());
        }
      }
      return shard;
    }

    static void destroy(const Shard* shard) noexcept {
      for (size_t i = 0; i < shard->capacity_; ++i) {
        if (shard->occupied(i)) shard->slots()[i].value().~V();
      }
      void* raw = const_cast<Shard*>(shard);
      const size_t bytes = shard->bytes_;
      shard->~Shard();
      ShardArena::instance().deallocate(raw, bytes);
    }

    Shard(size_t count, size_t capacity, size_t bytes)
        : count_(static_cast<uint32_t>(count)),
          capacity_(static_cast<uint32_t>(capacity)),
          bytes_(bytes) {}

    uint32_t count_;
    uint32_t capacity_;
    size_t bytes_;
    mutable std::atomic<uint32_t> refs_{1};
  };
  static_assert(sizeof(Shard) <= Shard::kHeader, "the header fits its cache line");

  // Bulk construction: O(n log(shard size)); duplicate keys keep the first.
  static ShardedIndex build(std::vector<Entry> entries) {
    ShardedIndex index;
    std::vector<std::vector<Entry>> buckets(kShards);
    for (Entry& e : entries) buckets[shardOf(hashOf(e.first))].push_back(std::move(e));
    std::vector<std::pair<std::string_view, V>> items;
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
        items.clear();
        for (Entry& e : bucket) items.emplace_back(e.first, std::move(e.second));
        if (!branch) branch = newBranch();
        (*branch)[s] = ShardRef(Shard::make(items));
        std::vector<Entry>().swap(bucket);
      }
      index.root_[b] = std::move(branch);
    }
    return index;
  }

  // Null if absent. Lock-free, allocation-free.
  const V* find(std::string_view key) const noexcept {
    const uint64_t h = hashOf(key);
    const Branch* branch = root_[branchOf(h)].get();
    if (branch == nullptr) return nullptr;
    const ShardRef& shard = (*branch)[shardInBranch(h)];
    if (!shard) return nullptr;
    return shard->find(key, h, shard.capacity());
  }

  // find() in two steps, so that several lookups overlap their memory
  // reads: locate() hashes the key and prefetches its branch word;
  // prefetch() reads that word and prefetches the home slot; find(key, at)
  // probes. Locate every key first, then prefetch each, then find each:
  // the misses of all of them are in flight together (Selector::select
  // does this for the exact and the wildcard key). Lock-free,
  // allocation-free; `key` must be the one located.
  struct Located {
    uint64_t hash = 0;
    const ShardRef* ref = nullptr;  // the branch word; null: no branch
  };
  Located locate(std::string_view key) const noexcept {
    const uint64_t h = hashOf(key);
    const Branch* branch = root_[branchOf(h)].get();
    if (branch == nullptr) return {h, nullptr};
    const ShardRef* ref = &(*branch)[shardInBranch(h)];
    __builtin_prefetch(ref);
    return {h, ref};
  }
  // The home slot and the one after it: a key is past its home slot about
  // a third of the time (linear probing, at most half full), and that second
  // read then overlaps the first instead of following it.
  static void prefetch(const Located& at) noexcept {
    if (at.ref == nullptr || !*at.ref) return;
    const auto* home = static_cast<const char*>((*at.ref)->homeSlot(at.hash, at.ref->capacity()));
    __builtin_prefetch(home);
    __builtin_prefetch(home + sizeof(typename Shard::Slot));
  }
  static const V* find(std::string_view key, const Located& at) noexcept {
    if (at.ref == nullptr || !*at.ref) return nullptr;
    return (*at.ref)->find(key, at.hash, at.ref->capacity());
  }

  // A copy sharing every shard but the key's, with `key` set to `value`.
  // Adds to *bytesCopied (if given) what the path copy cost.
  ShardedIndex set(std::string_view key, V value, size_t* bytesCopied = nullptr) const {
    return edit(key, bytesCopied, [&](Items& items, typename Items::iterator it, bool found) {
      if (found) {
        it->second = std::move(value);
        return 0;
      }
      items.emplace(it, key, std::move(value));
      return 1;
    });
  }

  // A copy sharing every shard but the key's, without `key`.
  ShardedIndex erase(std::string_view key, size_t* bytesCopied = nullptr) const {
    if (find(key) == nullptr) return *this;
    return edit(key, bytesCopied, [](Items& items, typename Items::iterator it, bool found) {
      if (!found) return 0;
      items.erase(it);
      return -1;
    });
  }

  size_t size() const { return size_; }

  // Calls fn(key, value) for every entry (control loop: listings, tests).
  // `key` is a reused buffer: valid only during the call.
  template <class Fn>
  void forEach(Fn&& fn) const {
    std::string key;
    for (const BranchPtr& branch : root_) {
      if (!branch) continue;
      for (const ShardRef& shard : *branch) {
        if (!shard) continue;
        for (size_t i = 0; i < shard->capacity(); ++i) {
          if (!shard->occupied(i)) continue;
          key.assign(shard->keyAt(i));
          fn(static_cast<const std::string&>(key), shard->valueAt(i));
        }
      }
    }
  }

  // The shard holding `key` (may be null): tests check sharing with it.
  const Shard* shardFor(std::string_view key) const {
    const uint64_t h = hashOf(key);
    const Branch* branch = root_[branchOf(h)].get();
    return branch == nullptr ? nullptr : (*branch)[shardInBranch(h)].get();
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

  // Where `key` goes (0..kShards - 1): tests use it to crowd one shard.
  static size_t shardIndexOf(std::string_view key) noexcept { return shardOf(hashOf(key)); }

 private:
  // An owning pointer to a shard (atomic reference count) with the shard's
  // capacity in its top 16 bits (user-space pointers fit in 48): a lookup
  // reads this one word, then the slots.
  class ShardRef {
   public:
    ShardRef() = default;
    explicit ShardRef(const Shard* shard) noexcept
        : bits_(shard == nullptr ? 0
                                 : reinterpret_cast<uintptr_t>(shard) |
                                       (uintptr_t{shard->capacity_} << kPointerBits)) {}
    ShardRef(const ShardRef& o) noexcept : bits_(o.bits_) {
      if (const Shard* p = get()) p->refs_.fetch_add(1, std::memory_order_relaxed);
    }
    ShardRef(ShardRef&& o) noexcept : bits_(std::exchange(o.bits_, 0)) {}
    ShardRef& operator=(ShardRef o) noexcept {
      std::swap(bits_, o.bits_);
      return *this;
    }
    ~ShardRef() {
      const Shard* p = get();
      if (p != nullptr && p->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        Shard::destroy(p);
      }
    }
    const Shard* get() const noexcept {
      return reinterpret_cast<const Shard*>(bits_ & ((uintptr_t{1} << kPointerBits) - 1));
    }
    uint32_t capacity() const noexcept { return static_cast<uint32_t>(bits_ >> kPointerBits); }
    const Shard* operator->() const noexcept { return get(); }
    explicit operator bool() const noexcept { return bits_ != 0; }

   private:
    static_assert(sizeof(uintptr_t) == 8, "64-bit pointers");
    uintptr_t bits_ = 0;
  };
  using Branch = std::array<ShardRef, kShardsPerBranch>;
  using BranchPtr = std::shared_ptr<const Branch>;
  using Items = std::vector<std::pair<std::string_view, V>>;  // a shard being rebuilt

  // Branches are arena blocks too (huge pages: the branch word a lookup
  // reads first is rarely a TLB miss).
  template <class... Args>
  static std::shared_ptr<Branch> newBranch(Args&&... args) {
    return std::allocate_shared<Branch>(ArenaAllocator<Branch>{}, std::forward<Args>(args)...);
  }

  static uint64_t hashOf(std::string_view key) noexcept {
    // libstdc++'s is a murmur-style 64-bit hash: the bytes used are well mixed.
    return static_cast<uint64_t>(std::hash<std::string_view>{}(key));
  }
  static size_t shardOf(uint64_t h) noexcept {
    return static_cast<size_t>(h >> (64 - kBranchBits - kShardBits));
  }
  static size_t branchOf(uint64_t h) noexcept {
    return static_cast<size_t>(h >> (64 - kBranchBits));
  }
  static size_t shardInBranch(uint64_t h) noexcept { return shardOf(h) & (kShardsPerBranch - 1); }

  template <class Change>
  ShardedIndex edit(std::string_view key, size_t* bytesCopied, Change&& change) const {
    const uint64_t h = hashOf(key);
    const size_t b = branchOf(h);
    const size_t s = shardInBranch(h);
    ShardedIndex copy = *this;  // the root: 128 shared_ptr copies
    auto branch = root_[b] ? newBranch(*root_[b]) : newBranch();
    // Keys point into the old shard, which *this keeps alive.
    Items items;
    if (const Shard* old = (*branch)[s].get()) {
      items.reserve(old->size() + 1);
      for (size_t i = 0; i < old->capacity(); ++i) {
        if (old->occupied(i)) items.emplace_back(old->keyAt(i), old->valueAt(i));
      }
      std::sort(items.begin(), items.end(),
                [](const auto& x, const auto& y) { return x.first < y.first; });
    }
    auto it = std::lower_bound(items.begin(), items.end(), key,
                               [](const auto& e, std::string_view k) { return e.first < k; });
    const bool found = it != items.end() && it->first == key;
    const int delta = change(items, it, found);
    copy.size_ = static_cast<size_t>(static_cast<ptrdiff_t>(size_) + delta);
    (*branch)[s] = items.empty() ? ShardRef() : ShardRef(Shard::make(items));
    if (bytesCopied != nullptr) {
      *bytesCopied +=
          sizeof(root_) + sizeof(Branch) + ((*branch)[s] ? (*branch)[s]->bytes() : size_t{0});
    }
    copy.root_[b] = std::move(branch);
    return copy;
  }

  std::array<BranchPtr, kBranches> root_{};
  size_t size_ = 0;
};

}  // namespace tlsedge::certstore
