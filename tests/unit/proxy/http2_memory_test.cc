// Http2Memory against the real libnghttp2: a server session made through it
// puts its frame buffer and stream map in slots; trim() gives their pages
// back only when their contents are dead; requests and responses (large
// header blocks, multi-frame bodies) stay intact across trims. A libnghttp2
// that allocates otherwise fails here.
#include "proxy/http2_memory.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace tlsedge::proxy {
namespace {

std::string pattern(int32_t id, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + id) % 26);
  return s;
}

// A server answering each request (at its END_STREAM) with `bodySize`
// bytes, and a client reading the answers: nghttp2 on both ends, the bytes
// passed in memory.
class Pair {
 public:
  explicit Pair(Http2Memory& memory) {
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &serverFrame);
    nghttp2_option* option = nullptr;
    nghttp2_option_new(&option);
    nghttp2_option_set_no_closed_streams(option, 1);
    memory.beginSession();
    EXPECT_EQ(nghttp2_session_server_new3(&server_, cb, this, option, memory.mem()), 0);
    memory.endSession();
    nghttp2_option_del(option);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(server_, NGHTTP2_FLAG_NONE, nullptr, 0);

    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, &clientHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &clientData);
    nghttp2_session_client_new(&client_, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(client_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Pair() {
    nghttp2_session_del(client_);
    nghttp2_session_del(server_);
  }

  // A GET with a header of `headerBytes`; ends the stream unless `open`.
  int32_t request(size_t headerBytes, bool open = false) {
    const std::string big(headerBytes, 'h');
    const nghttp2_nv nv[] = {
        field(":method", "GET"), field(":scheme", "https"), field(":authority", "a.test"),
        field(":path", "/"),     field("x-big", big),
    };
    const uint8_t flags = open ? NGHTTP2_FLAG_NONE : NGHTTP2_FLAG_END_STREAM;
    return nghttp2_submit_headers(client_, flags, -1, nullptr, nv, std::size(nv), nullptr);
  }
  void end(int32_t id) {
    nghttp2_data_provider none{};
    none.read_callback = [](nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t* flags,
                            nghttp2_data_source*, void*) -> ssize_t {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    };
    nghttp2_submit_data(client_, NGHTTP2_FLAG_END_STREAM, id, &none);
  }
  // Passes bytes both ways until neither end has any to send.
  void pump() {
    for (int i = 0; i < 1000; ++i) {
      const bool moved = pass(client_, server_) | pass(server_, client_);
      if (!moved) return;
    }
    ADD_FAILURE() << "the sessions never settled";
  }

  nghttp2_session* server() { return server_; }
  size_t bodySize = 0;
  std::map<int32_t, std::string> bodies;
  std::map<int32_t, std::string> statuses;

 private:
  static nghttp2_nv field(const char* name, const std::string& value) {
    return {reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
            reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), std::strlen(name),
            value.size(), NGHTTP2_NV_FLAG_NONE};
  }
  static nghttp2_nv field(const char* name, const char* value) {
    return {reinterpret_cast<uint8_t*>(const_cast<char*>(name)),
            reinterpret_cast<uint8_t*>(const_cast<char*>(value)), std::strlen(name),
            std::strlen(value), NGHTTP2_NV_FLAG_NONE};
  }
  static bool pass(nghttp2_session* from, nghttp2_session* to) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(from, &data);
    EXPECT_GE(n, 0);
    if (n <= 0) return false;
    EXPECT_EQ(nghttp2_session_mem_recv(to, data, static_cast<size_t>(n)), n);
    return true;
  }
  static int serverFrame(nghttp2_session* s, const nghttp2_frame* frame, void* user) {
    auto* pair = static_cast<Pair*>(user);
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
      return 0;
    }
    const int32_t id = frame->hd.stream_id;
    pair->sent_[id] = {pattern(id, pair->bodySize), 0};
    nghttp2_data_provider body{};
    body.source.ptr = pair;
    body.read_callback = &serverBody;
    const nghttp2_nv nv[] = {field(":status", "200"), field("content-type", "text/plain")};
    nghttp2_submit_response(s, id, nv, std::size(nv), &body);
    return 0;
  }
  static ssize_t serverBody(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                            uint32_t* flags, nghttp2_data_source* source, void*) {
    auto& [text, offset] = static_cast<Pair*>(source->ptr)->sent_[id];
    const size_t n = std::min(length, text.size() - offset);
    std::memcpy(buf, text.data() + offset, n);
    offset += n;
    if (offset == text.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  static int clientHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                          size_t nameLen, const uint8_t* value, size_t valueLen, uint8_t,
                          void* user) {
    if (std::string_view(reinterpret_cast<const char*>(name), nameLen) == ":status") {
      static_cast<Pair*>(user)->statuses[frame->hd.stream_id].assign(
          reinterpret_cast<const char*>(value), valueLen);
    }
    return 0;
  }
  static int clientData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                        void* user) {
    static_cast<Pair*>(user)->bodies[id].append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  nghttp2_session* server_ = nullptr;
  nghttp2_session* client_ = nullptr;
  std::map<int32_t, std::pair<std::string, size_t>> sent_;
};

TEST(Http2Memory, TheFrameBufferAndTheStreamMapLiveInSlots) {
  Http2Memory memory;
  Pair pair(memory);
  EXPECT_EQ(memory.slots(), 2u);  // libnghttp2 1.52: 16394 + 4096 bytes
}

TEST(Http2Memory, AnIdleSessionHoldsNoPageOfEither) {
  Http2Memory memory;
  Pair pair(memory);
  pair.bodySize = 100;
  const int32_t id = pair.request(200);
  pair.pump();
  ASSERT_EQ(pair.bodies[id], pattern(id, 100));
  EXPECT_LT(memory.slotsNotResident(), 2u);  // used: some page is in
  ASSERT_EQ(nghttp2_session_want_write(pair.server()), 0);
  memory.trim(true);
  EXPECT_EQ(memory.slotsNotResident(), 2u);
}

TEST(Http2Memory, AStreamHeldKeepsTheMapAndAFrameDueKeepsTheBuffer) {
  Http2Memory memory;
  Pair pair(memory);
  pair.bodySize = 1000;
  const int32_t id = pair.request(100, /*open=*/true);
  pair.pump();
  memory.trim(false);  // a frame due: the buffer stays; the map holds the stream
  EXPECT_EQ(memory.slotsNotResident(), 0u);
  memory.trim(true);  // the buffer goes, the map (not all zeros) stays
  EXPECT_EQ(memory.slotsNotResident(), 1u);
  pair.end(id);
  pair.pump();
  EXPECT_EQ(pair.statuses[id], "200");
  EXPECT_EQ(pair.bodies[id], pattern(id, 1000));
}

TEST(Http2Memory, ASessionAfterOneEndedBusyStartsClean) {
  // The first session ends with a stream open: its map slot goes back to
  // the pool holding bytes, and the next session's map (calloc) must read
  // as zeros all the same.
  {
    Http2Memory memory;
    Pair pair(memory);
    pair.request(100, /*open=*/true);
    pair.pump();
  }
  Http2Memory memory;
  Pair pair(memory);
  pair.bodySize = 500;
  for (int i = 0; i < 3; ++i) {
    const int32_t id = pair.request(100);
    pair.pump();
    ASSERT_EQ(pair.statuses[id], "200");
    ASSERT_EQ(pair.bodies[id], pattern(id, 500));
  }
}

TEST(Http2Memory, RequestsAndResponsesStayIntactAcrossTrims) {
  Http2Memory memory;
  Pair pair(memory);
  for (int i = 0; i < 40; ++i) {
    // Header blocks up to 12 KiB, bodies of 0 to ~70 KB (many DATA frames).
    pair.bodySize = static_cast<size_t>(i) * 1777;
    const int32_t id = pair.request(static_cast<size_t>(i % 4) * 3000 + 1);
    pair.pump();
    ASSERT_EQ(pair.statuses[id], "200") << "request " << i;
    ASSERT_EQ(pair.bodies[id], pattern(id, pair.bodySize)) << "request " << i;
    memory.trim(nghttp2_session_want_write(pair.server()) == 0);
  }
  EXPECT_EQ(memory.slots(), 2u);
}

}  // namespace
}  // namespace tlsedge::proxy
