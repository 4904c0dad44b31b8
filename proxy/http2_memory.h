// Http2Memory: libnghttp2's allocator for one session, which lets an idle
// HTTP/2 connection give its two large buffers' pages back to the kernel.
//
// A libnghttp2 1.52 server session allocates, when it is made, a 16 KiB
// outbound frame buffer it keeps for the session's life and writes only
// while a frame is being sent, and a 4 KiB stream map, all zeros while it
// holds no stream. They are 20 of the 26 KB a session holds (heaptrack),
// and once used stay resident. Made through this allocator, allocations of
// a page or more go to page-aligned slots of their own (PageSlots), and
// trim() gives a slot's pages back (MADV_DONTNEED) when its contents are
// dead: the frame buffer when nghttp2 has no frame to send, any other slot
// when it holds only zeros. The next use faults in zeroed pages.
//
// tests/unit/proxy/http2_memory_test.cc checks libnghttp2 against these
// assumptions (the two slots, frames intact across trims), so that a
// libnghttp2 that allocates otherwise fails a test rather than a client.
//
// Thread: the one that makes and ends the session (slots come from a pool
// per thread). Ownership: outlives the session it serves.
#pragma once

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstddef>
#include <span>

namespace tlsedge::proxy {

class Http2Memory {
 public:
  Http2Memory();
  ~Http2Memory();
  Http2Memory(const Http2Memory&) = delete;
  Http2Memory& operator=(const Http2Memory&) = delete;

  // For nghttp2_session_server_new3 (nghttp2 copies it).
  nghttp2_mem* mem() { return &mem_; }
  // Between these, the session is being made: what it allocates then of a
  // page or more lives for the session, and goes to a slot.
  void beginSession() { making_ = true; }
  void endSession() { making_ = false; }

  // Gives back the pages of every slot whose contents are dead: the frame
  // buffer's if `frameIdle` (nghttp2_session_want_write() is 0: no frame is
  // half sent), and those of any slot that holds only zeros.
  void trim(bool frameIdle);

  // For tests: the slots held, and those none of whose pages is resident.
  size_t slots() const { return count_; }
  size_t slotsNotResident() const;

 private:
  struct Slot {
    char* at;
    size_t bytes;      // whole pages
    bool frameBuffer;  // realloc(nullptr, 16 KiB or more) while making
  };

  std::span<const Slot> live() const { return {slot_.data(), count_}; }
  void* allocate(size_t bytes, bool frameBuffer, bool zeroed);
  void release(void* p);
  Slot* find(void* p);

  static void* onMalloc(size_t size, void* self);
  static void onFree(void* p, void* self);
  static void* onCalloc(size_t n, size_t size, void* self);
  static void* onRealloc(void* p, size_t size, void* self);

  nghttp2_mem mem_;
  // Inline: an idle connection holds no allocation for them.
  std::array<Slot, 4> slot_{};
  size_t count_ = 0;
  bool making_ = false;
};

}  // namespace tlsedge::proxy
