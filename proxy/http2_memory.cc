#include "proxy/http2_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace tlsedge::proxy {
namespace {

constexpr size_t kPage = 4096;
// Slots of 1 to kMaxPages pages: the frame buffer (16394 bytes) takes 5.
constexpr size_t kMaxPages = 5;
// A frame buffer is at least one frame's payload (SETTINGS_MAX_FRAME_SIZE's
// initial value).
constexpr size_t kFrameBufferMin = 16384;

// Gives the pages back to the kernel: they read as zeros from now on.
bool discard(char* p, size_t n) { return madvise(p, n, MADV_DONTNEED) == 0; }

// Page-aligned slots of one size, carved from mappings of kSlotsPerMap
// slots that are never unmapped. One pool per size and thread.
//
// A slot a session ends with stays resident for the next session (no
// madvise per closed connection: in a threaded process one may interrupt
// the CPUs of the other workers to flush their TLBs), up to kKeptDirty
// free slots; beyond, its pages go back to the kernel.
class PageSlots {
 public:
  static constexpr size_t kSlotsPerMap = 64;
  static constexpr size_t kKeptDirty = 64;

  explicit PageSlots(size_t bytes) : bytes_(bytes) {}
  PageSlots(const PageSlots&) = delete;
  PageSlots& operator=(const PageSlots&) = delete;

  // `zeroed`: the slot must read as zeros (calloc).
  char* take(bool zeroed) {
    if (free_.empty()) {
      void* m = mmap(nullptr, bytes_ * kSlotsPerMap, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m == MAP_FAILED) return nullptr;
      // Small pages: a huge page would make one touched slot cost 2 MiB.
      madvise(m, bytes_ * kSlotsPerMap, MADV_NOHUGEPAGE);
      for (size_t i = kSlotsPerMap; i-- > 0;) {
        free_.push_back({static_cast<char*>(m) + i * bytes_, false});
      }
    }
    const Free slot = free_.back();
    free_.pop_back();
    if (slot.dirty) {
      --dirty_;
      if (zeroed) std::memset(slot.at, 0, bytes_);
    }
    return slot.at;
  }
  void give(char* slot) {
    const bool dirty = dirty_ < kKeptDirty || !discard(slot, bytes_);
    dirty_ += dirty;
    free_.push_back({slot, dirty});
  }

 private:
  struct Free {
    char* at;
    bool dirty;  // may hold bytes (else zeros: never touched, or given back)
  };
  size_t bytes_;
  std::vector<Free> free_;  // the last given back is taken first
  size_t dirty_ = 0;        // free slots that may hold bytes
};

PageSlots& pool(size_t pages) {
  thread_local std::array<PageSlots, kMaxPages> pools{PageSlots(kPage), PageSlots(2 * kPage),
                                                      PageSlots(3 * kPage), PageSlots(4 * kPage),
                                                      PageSlots(5 * kPage)};
  return pools[pages - 1];
}

bool allZero(const char* p, size_t n) { return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0; }

Http2Memory& self(void* p) { return *static_cast<Http2Memory*>(p); }

}  // namespace

Http2Memory::Http2Memory() : mem_{this, &onMalloc, &onFree, &onCalloc, &onRealloc} {}

Http2Memory::~Http2Memory() {
  // nghttp2_session_del frees them all; a session never made leaves none.
  for (const Slot& s : live()) pool(s.bytes / kPage).give(s.at);
}

void* Http2Memory::allocate(size_t bytes, bool frameBuffer, bool zeroed) {
  if (!making_ || count_ == slot_.size() || bytes < kPage || bytes > kMaxPages * kPage) {
    return nullptr;
  }
  const size_t pages = (bytes + kPage - 1) / kPage;
  char* at = pool(pages).take(zeroed);
  if (at != nullptr) slot_[count_++] = {at, pages * kPage, frameBuffer};
  return at;
}

Http2Memory::Slot* Http2Memory::find(void* p) {
  for (size_t i = 0; i < count_; ++i) {
    if (slot_[i].at == p) return &slot_[i];
  }
  return nullptr;
}

void Http2Memory::release(void* p) {
  Slot* s = find(p);
  if (s == nullptr) {
    std::free(p);
    return;
  }
  pool(s->bytes / kPage).give(s->at);
  *s = slot_[--count_];
}

void Http2Memory::trim(bool frameIdle) {
  for (const Slot& s : live()) {
    // A failed discard leaves what was there: dead bytes, or zeros.
    if (s.frameBuffer ? frameIdle : allZero(s.at, s.bytes)) discard(s.at, s.bytes);
  }
}

size_t Http2Memory::slotsNotResident() const {
  size_t n = 0;
  for (const Slot& s : live()) {
    std::array<unsigned char, kMaxPages> resident{};
    mincore(s.at, s.bytes, resident.data());
    const size_t pages = s.bytes / kPage;
    n += std::none_of(resident.begin(), resident.begin() + pages,
                      [](unsigned char r) { return (r & 1) != 0; });
  }
  return n;
}

void* Http2Memory::onMalloc(size_t size, void* me) {
  void* p = self(me).allocate(size, false, false);
  return p != nullptr ? p : std::malloc(size);
}

void Http2Memory::onFree(void* p, void* me) {
  if (p != nullptr) self(me).release(p);
}

void* Http2Memory::onCalloc(size_t n, size_t size, void* me) {
  void* p = size != 0 && n <= SIZE_MAX / size ? self(me).allocate(n * size, false, true) : nullptr;
  return p != nullptr ? p : std::calloc(n, size);
}

void* Http2Memory::onRealloc(void* p, size_t size, void* me) {
  Http2Memory& m = self(me);
  if (p == nullptr) {
    void* q = m.allocate(size, size >= kFrameBufferMin, false);
    return q != nullptr ? q : std::malloc(size);
  }
  Slot* s = m.find(p);
  if (s == nullptr) return std::realloc(p, size);
  // Out of its slot, onto the heap.
  void* q = std::malloc(size);
  if (q == nullptr) return nullptr;
  std::memcpy(q, s->at, std::min(size, s->bytes));
  m.release(p);
  return q;
}

}  // namespace tlsedge::proxy
