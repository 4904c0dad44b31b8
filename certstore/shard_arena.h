// ShardArena: where ShardedIndex shards and branches (snapshot.h) live: 2 MiB-aligned
// regions mapped with mmap and marked madvise(MADV_HUGEPAGE), carved into
// size classes with a free list per class.
//
// Why: at 1M certificates the index is ~300 MiB of slots read at random.
// With 4 KiB pages each lookup's slot read is also a TLB miss whose page
// walk misses the caches itself (two DRAM round trips, more under nested
// paging); with transparent huge pages the walk is short and mostly cached.
// malloc would put shards on 4 KiB pages unless the operator sets
// GLIBC_TUNABLES; the daemon does it here itself. Where the kernel has no
// THP (or it is "never") the madvise is refused and ignored: the arena then
// works on ordinary pages.
//
// Size classes (all multiples of 64 bytes, blocks 64-byte aligned): every
// multiple of 64 up to 1 KiB, then four per power of two (1.25, 1.5, 1.75,
// 2 x) up to 1 MiB: at most 25% rounding, which ShardedIndex turns into
// spare slots (it sizes a shard's table by usableSize()). A request above
// 1 MiB gets its own mapping, unmapped when freed. Freed blocks go on their
// class's free list and are reused; regions are never returned to the
// kernel (a store's index shrinks rarely; the next update reuses them).
// When a region cannot fit a request, its rest is cut into free blocks of
// the largest classes that fit: nothing is lost to region ends.
//
// Thread: allocate() runs on the control loop (index builds and updates);
// deallocate() on whichever thread drops the last snapshot sharing a shard
// (a worker, after its last handshake on an old snapshot). Both take one
// short mutex; lookups never call the arena. instance() is the process-wide
// arena, never destroyed (shards may be freed during static destruction).
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

namespace tlsedge::certstore {

class ShardArena {
 public:
  static constexpr size_t kAlign = 64;
  static constexpr size_t kRegionBytes = size_t{2} << 20;  // one huge page
  static constexpr size_t kMaxClassBytes = size_t{1} << 20;

  struct Stats {
    size_t mappedBytes = 0;  // regions and large blocks mapped
    size_t inUseBytes = 0;   // blocks handed out, at their class size
    size_t freeBytes = 0;    // on the free lists
    size_t blocks = 0;       // handed out
    size_t regions = 0;      // 2 MiB regions mapped (large blocks excluded)
    bool hugePages = false;  // madvise(MADV_HUGEPAGE) accepted
  };

  // `hugePages` false: plain mappings (tests compare; the kernel decides).
  explicit ShardArena(bool hugePages = true);
  ~ShardArena();  // unmaps everything: only for arenas whose blocks are all freed
  ShardArena(const ShardArena&) = delete;
  ShardArena& operator=(const ShardArena&) = delete;

  static ShardArena& instance();

  // Whether regions mapped from now on are marked MADV_HUGEPAGE (the
  // constructor's choice until then): benchmarks compare page sizes in one
  // process.
  void setHugePages(bool hugePages);

  // The block size a request of `bytes` gets (its class, or whole pages
  // above kMaxClassBytes).
  static size_t usableSize(size_t bytes) noexcept;

  // A block of usableSize(bytes) bytes, kAlign-aligned. Throws
  // std::bad_alloc if the kernel refuses a mapping.
  void* allocate(size_t bytes);
  // `bytes` is what was passed to allocate(), or its usableSize().
  void deallocate(void* block, size_t bytes) noexcept;

  Stats stats() const;

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  static constexpr size_t kSmallClasses = 1024 / kAlign;      // 64 .. 1024
  static constexpr size_t kClasses = kSmallClasses + 4 * 10;  // .. 1 MiB
  static size_t classOf(size_t bytes) noexcept;
  static size_t classBytes(size_t cls) noexcept;

  void* map(size_t bytes);               // kRegionBytes-aligned, whole huge pages
  void newRegion();                      // under mutex_
  void release(char* at, size_t bytes);  // cuts [at, at+bytes) into free blocks

  // A sanctioned lock (docs/principles.md): a worker dropping an old
  // snapshot frees its shards here; lookups never take it.
  mutable std::mutex mutex_;
  bool wantHugePages_;
  FreeBlock* free_[kClasses] = {};
  char* cursor_ = nullptr;  // the current region's unused part
  char* end_ = nullptr;
  std::vector<std::pair<void*, size_t>> mappings_;  // regions (large blocks unmap themselves)
  Stats stats_;
};

// A standard allocator over ShardArena::instance(): ShardedIndex's branches
// (std::allocate_shared), so that the branch level sits on huge pages too.
template <class T>
struct ArenaAllocator {
  static_assert(alignof(T) <= ShardArena::kAlign);
  using value_type = T;
  ArenaAllocator() = default;
  template <class U>
  ArenaAllocator(const ArenaAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit
  T* allocate(size_t n) { return static_cast<T*>(ShardArena::instance().allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { ShardArena::instance().deallocate(p, n * sizeof(T)); }
  friend bool operator==(const ArenaAllocator&, const ArenaAllocator&) noexcept { return true; }
};

}  // namespace tlsedge::certstore
