// ShardArena: size classes, alignment, reuse of freed blocks, region ends,
// large blocks, frees from several threads (run under TSan too), and the
// index shards living in the process-wide arena.
#include "certstore/shard_arena.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "certstore/snapshot.h"

namespace tlsedge::certstore {
namespace {

TEST(ShardArenaTest, ClassesRoundUpByAtMostAQuarter) {
  size_t previous = 0;
  for (size_t bytes = 1; bytes <= ShardArena::kMaxClassBytes; bytes += bytes < 4096 ? 1 : 997) {
    const size_t usable = ShardArena::usableSize(bytes);
    EXPECT_GE(usable, bytes);
    EXPECT_EQ(usable % ShardArena::kAlign, 0u) << bytes;
    EXPECT_LE(usable, bytes + bytes / 4 + ShardArena::kAlign) << bytes;
    EXPECT_GE(usable, previous) << bytes;                        // monotonic
    EXPECT_EQ(ShardArena::usableSize(usable), usable) << bytes;  // a class maps to itself
    previous = usable;
  }
  EXPECT_EQ(ShardArena::usableSize(ShardArena::kMaxClassBytes), ShardArena::kMaxClassBytes);
  EXPECT_EQ(ShardArena::usableSize(ShardArena::kMaxClassBytes + 1),
            ShardArena::kMaxClassBytes + 4096);
}

TEST(ShardArenaTest, BlocksAreAlignedAndDisjoint) {
  ShardArena arena;
  std::vector<std::pair<char*, size_t>> blocks;
  for (size_t i = 0; i < 3000; ++i) {
    const size_t bytes = 64 + (i * 7919) % 20000;
    auto* block = static_cast<char*>(arena.allocate(bytes));
    ASSERT_EQ(reinterpret_cast<uintptr_t>(block) % ShardArena::kAlign, 0u);
    std::memset(block, static_cast<int>(i & 0xff), ShardArena::usableSize(bytes));
    blocks.emplace_back(block, bytes);
  }
  // Each block still holds its own pattern over its whole usable size.
  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto [block, bytes] = blocks[i];
    const size_t usable = ShardArena::usableSize(bytes);
    ASSERT_EQ(block[0], static_cast<char>(i & 0xff));
    ASSERT_EQ(block[usable - 1], static_cast<char>(i & 0xff));
  }
  auto stats = arena.stats();
  EXPECT_EQ(stats.blocks, blocks.size());
  EXPECT_GE(stats.mappedBytes, stats.inUseBytes + stats.freeBytes);
  EXPECT_EQ(stats.mappedBytes, stats.regions * ShardArena::kRegionBytes);
  for (auto [block, bytes] : blocks) arena.deallocate(block, bytes);
  stats = arena.stats();
  EXPECT_EQ(stats.blocks, 0u);
  EXPECT_EQ(stats.inUseBytes, 0u);
  // Nothing lost: every mapped byte is either the current region's unused
  // end or on a free list.
  EXPECT_LE(stats.mappedBytes - stats.freeBytes, ShardArena::kRegionBytes);
}

TEST(ShardArenaTest, FreedBlocksAreReused) {
  ShardArena arena;
  void* a = arena.allocate(4000);
  void* b = arena.allocate(4000);
  EXPECT_NE(a, b);
  const size_t mapped = arena.stats().mappedBytes;
  arena.deallocate(a, 4000);
  EXPECT_EQ(arena.allocate(ShardArena::usableSize(4000)), a);  // same class, same block
  // Many rounds of free + allocate map nothing more.
  for (int i = 0; i < 10000; ++i) {
    void* c = arena.allocate(3900);
    arena.deallocate(c, 3900);
  }
  EXPECT_EQ(arena.stats().mappedBytes, mapped);
  arena.deallocate(a, 4000);
  arena.deallocate(b, 4000);
}

TEST(ShardArenaTest, RegionEndsBecomeFreeBlocks) {
  ShardArena arena;
  constexpr size_t k768 = 768 * 1024;  // a class: two fit a region, with 512 KiB left
  void* a = arena.allocate(k768);
  void* b = arena.allocate(k768);
  void* c = arena.allocate(k768);  // a second region; the first one's end is freed
  auto stats = arena.stats();
  EXPECT_EQ(stats.regions, 2u);
  EXPECT_EQ(stats.freeBytes, 512u * 1024);
  // A block of that size comes out of the first region's end.
  void* d = arena.allocate(512 * 1024);
  EXPECT_EQ(static_cast<char*>(d), static_cast<char*>(b) + k768);
  stats = arena.stats();
  EXPECT_EQ(stats.regions, 2u);
  EXPECT_EQ(stats.freeBytes, 0u);
  for (void* p : {a, b, c}) arena.deallocate(p, k768);
  arena.deallocate(d, 512 * 1024);
}

TEST(ShardArenaTest, LargeBlocksAreMappedAndUnmapped) {
  ShardArena arena;
  const size_t bytes = 3 * ShardArena::kMaxClassBytes + 5;
  auto* block = static_cast<char*>(arena.allocate(bytes));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % ShardArena::kRegionBytes, 0u);
  std::memset(block, 1, bytes);
  EXPECT_EQ(arena.stats().mappedBytes, ShardArena::usableSize(bytes));
  arena.deallocate(block, bytes);
  EXPECT_EQ(arena.stats().mappedBytes, 0u);
  EXPECT_EQ(arena.stats().inUseBytes, 0u);
}

TEST(ShardArenaTest, HugePagesAskedForWhereTheKernelOffersThem) {
  std::ifstream file("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(file, modes);
  if (modes.find("[never]") != std::string::npos || modes.empty()) GTEST_SKIP() << "no THP";
  ShardArena arena;
  void* block = arena.allocate(100);
  EXPECT_TRUE(arena.stats().hugePages);
  arena.deallocate(block, 100);
  ShardArena plain(false);
  block = plain.allocate(100);
  EXPECT_FALSE(plain.stats().hugePages);
  plain.deallocate(block, 100);
}

// Workers free old snapshots' shards while the control loop allocates new ones.
TEST(ShardArenaTest, ConcurrentFreesAndAllocations) {
  ShardArena arena;
  constexpr size_t kThreads = 4;
  constexpr size_t kPerThread = 5000;
  std::vector<std::vector<void*>> owned(kThreads);
  for (size_t t = 0; t < kThreads; ++t) {
    for (size_t i = 0; i < kPerThread; ++i) {
      void* p = arena.allocate(64 + 64 * (i % 40));
      std::memset(p, static_cast<int>(t), 64);
      owned[t].push_back(p);
    }
  }
  std::vector<std::thread> threads;
  for (size_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&arena, &owned, t] {
      for (size_t i = 0; i < kPerThread; ++i) {
        EXPECT_EQ(static_cast<char*>(owned[t][i])[63], static_cast<char>(t));
        arena.deallocate(owned[t][i], 64 + 64 * (i % 40));
      }
    });
  }
  std::vector<void*> mine;
  for (size_t i = 0; i < kPerThread; ++i) {
    void* p = arena.allocate(64 + 64 * (i % 40));
    std::memset(p, 0x5a, 64 + 64 * (i % 40));
    mine.push_back(p);
  }
  for (auto& thread : threads) thread.join();
  std::set<void*> distinct(mine.begin(), mine.end());
  EXPECT_EQ(distinct.size(), mine.size());
  for (size_t i = 0; i < mine.size(); ++i) arena.deallocate(mine[i], 64 + 64 * (i % 40));
  EXPECT_EQ(arena.stats().blocks, 0u);
  EXPECT_EQ(arena.stats().inUseBytes, 0u);
}

// The index's shards are arena blocks; the last index sharing them frees
// them on whichever thread drops it.
TEST(ShardArenaTest, IndexShardsLiveInTheArenaAndAreFreedOnTheDroppingThread) {
  const size_t blocksBefore = ShardArena::instance().stats().blocks;
  std::vector<ShardedIndex<int>::Entry> entries;
  for (int i = 0; i < 5000; ++i) entries.emplace_back("host-" + std::to_string(i), i);
  auto index = std::make_unique<ShardedIndex<int>>(ShardedIndex<int>::build(std::move(entries)));
  size_t shards = 0;
  for (const auto* shard : index->shards()) {
    if (shard == nullptr) continue;
    ++shards;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(shard) % ShardArena::kAlign, 0u);
    EXPECT_EQ(shard->bytes(), ShardArena::usableSize(shard->bytes()));
    EXPECT_GE(shard->capacity(), 2 * shard->size());
  }
  EXPECT_GT(ShardArena::instance().stats().blocks, blocksBefore + shards);  // and the branches
  auto copy = std::make_unique<ShardedIndex<int>>(index->set("host-1", -1));
  std::thread worker([&copy] { copy.reset(); });
  index.reset();
  worker.join();
  EXPECT_EQ(ShardArena::instance().stats().blocks, blocksBefore);
}

}  // namespace
}  // namespace tlsedge::certstore
