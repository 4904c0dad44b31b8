#include "certstore/shard_arena.h"

#include <sys/mman.h>

#include <bit>
#include <cstdint>
#include <new>

namespace tlsedge::certstore {
namespace {

constexpr size_t kPage = 4096;

size_t roundUp(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }

}  // namespace

ShardArena::ShardArena(bool hugePages) : wantHugePages_(hugePages) {}

ShardArena::~ShardArena() {
  for (auto [at, bytes] : mappings_) ::munmap(at, bytes);
}

ShardArena& ShardArena::instance() {
  static ShardArena* const arena = new ShardArena(true);  // never destroyed
  return *arena;
}

// Classes 0..15: (cls + 1) x 64 bytes. Then, for 2^p < bytes <= 2^(p+1)
// (p >= 10), four classes of 2^p + k x 2^(p-2), k = 1..4.
void ShardArena::setHugePages(bool hugePages) {
  std::lock_guard lock(mutex_);
  wantHugePages_ = hugePages;
}

size_t ShardArena::classOf(size_t bytes) noexcept {
  if (bytes <= 1024) return bytes == 0 ? 0 : (bytes - 1) / kAlign;
  const unsigned p = static_cast<unsigned>(std::bit_width(bytes - 1)) - 1;
  const size_t step = size_t{1} << (p - 2);
  const size_t k = (bytes - (size_t{1} << p) + step - 1) / step;  // 1..4
  return kSmallClasses + (p - 10) * 4 + k - 1;
}

size_t ShardArena::classBytes(size_t cls) noexcept {
  if (cls < kSmallClasses) return (cls + 1) * kAlign;
  const size_t p = 10 + (cls - kSmallClasses) / 4;
  const size_t k = (cls - kSmallClasses) % 4 + 1;
  return (size_t{1} << p) + k * (size_t{1} << (p - 2));
}

size_t ShardArena::usableSize(size_t bytes) noexcept {
  if (bytes > kMaxClassBytes) return roundUp(bytes, kPage);
  return classBytes(classOf(bytes));
}

void* ShardArena::map(size_t bytes) {
  // Over-map by one region, then trim to a region-aligned range.
  const size_t span = bytes + kRegionBytes;
  void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = roundUp(start, kRegionBytes);
  if (aligned > start) ::munmap(raw, aligned - start);
  const uintptr_t tail = aligned + bytes;
  if (start + span > tail) ::munmap(reinterpret_cast<void*>(tail), start + span - tail);
  void* at = reinterpret_cast<void*>(aligned);
  if (wantHugePages_ && ::madvise(at, bytes, MADV_HUGEPAGE) == 0) stats_.hugePages = true;
  stats_.mappedBytes += bytes;
  return at;
}

void ShardArena::release(char* at, size_t bytes) {
  while (bytes >= kAlign) {
    size_t cls = classOf(bytes > kMaxClassBytes ? kMaxClassBytes : bytes);
    if (classBytes(cls) > bytes) --cls;  // the largest class that fits
    const size_t size = classBytes(cls);
    auto* block = reinterpret_cast<FreeBlock*>(at);
    block->next = free_[cls];
    free_[cls] = block;
    stats_.freeBytes += size;
    at += size;
    bytes -= size;
  }
}

void ShardArena::newRegion() {
  if (cursor_ != end_) release(cursor_, static_cast<size_t>(end_ - cursor_));
  cursor_ = static_cast<char*>(map(kRegionBytes));
  end_ = cursor_ + kRegionBytes;
  mappings_.emplace_back(cursor_, kRegionBytes);
  ++stats_.regions;
}

void* ShardArena::allocate(size_t bytes) {
  std::lock_guard lock(mutex_);
  if (bytes > kMaxClassBytes) {
    const size_t size = roundUp(bytes, kPage);
    void* at = map(size);
    stats_.inUseBytes += size;
    ++stats_.blocks;
    return at;
  }
  const size_t cls = classOf(bytes);
  const size_t size = classBytes(cls);
  void* at;
  if (FreeBlock* block = free_[cls]) {
    free_[cls] = block->next;
    stats_.freeBytes -= size;
    at = block;
  } else {
    if (static_cast<size_t>(end_ - cursor_) < size) newRegion();
    at = cursor_;
    cursor_ += size;
  }
  stats_.inUseBytes += size;
  ++stats_.blocks;
  return at;
}

void ShardArena::deallocate(void* block, size_t bytes) noexcept {
  if (block == nullptr) return;
  std::lock_guard lock(mutex_);
  --stats_.blocks;
  if (bytes > kMaxClassBytes) {
    const size_t size = roundUp(bytes, kPage);
    ::munmap(block, size);
    stats_.mappedBytes -= size;
    stats_.inUseBytes -= size;
    return;
  }
  const size_t cls = classOf(bytes);
  auto* freed = static_cast<FreeBlock*>(block);
  freed->next = free_[cls];
  free_[cls] = freed;
  stats_.inUseBytes -= classBytes(cls);
  stats_.freeBytes += classBytes(cls);
}

ShardArena::Stats ShardArena::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace tlsedge::certstore
