// The access log: one JSON object per line per request, written without
// blocking a worker.
//
// Workers format records into a per-worker AccessLogBuffer (no lock, no
// shared write per request). A buffer hands its bytes to the process-wide
// AccessLogWriter when it passes kFlushBytes or kFlushDelayMs after its first
// record, so the writer's lock is taken at most a few times per second per
// worker. The writer's thread does the write(2) calls; if it falls more than
// kMaxBacklogBytes behind (a stuck disk), new chunks are dropped and counted
// instead of growing memory without bound.
//
// Threads: AccessLogWriter::open() and use() on the control loop; submit() and
// enabled() from any thread; an AccessLogBuffer on its worker's loop only.
#pragma once

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "base/result.h"
#include "conf/config.h"

namespace tlsedge::proxy {

// What one request did. Views point into the connection; valid during
// AccessLogBuffer::append only.
struct AccessRecord {
  int64_t startUnixMs = 0;  // wall clock when the request head was complete
  std::string_view client;  // peer IP
  bool tls = false;
  std::string_view site;  // empty: no site matched
  std::string_view host;
  std::string_view method;
  std::string_view target;
  int versionMajor = 1;  // HTTP/1.x or HTTP/2
  int versionMinor = 1;
  int status = 0;                 // 0: no response was sent (connection failed)
  uint64_t bytesIn = 0;           // request body bytes received
  uint64_t bytesOut = 0;          // response bytes sent (head and body, before TLS)
  int64_t durationUs = 0;         // head start to response end
  std::string_view upstream;      // name; empty: answered by tlsedge
  std::string_view upstreamAddr;  // server that answered (or failed)
  int64_t upstreamHeaderUs = -1;  // head complete -> origin's response head; -1: none
};

// The JSON line for `record`, with the trailing newline. Strings are escaped
// so any byte sequence a client sends yields valid JSON.
std::string formatAccessRecord(const AccessRecord& record);

class AccessLogWriter {
 public:
  static constexpr size_t kMaxBacklogBytes = 64 << 20;

  AccessLogWriter();
  ~AccessLogWriter();  // writes what was submitted, then stops the thread
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  // Where the log goes: a file opened for appending, or nowhere (off).
  // Closes its file unless handed to use().
  class Destination {
   public:
    explicit Destination(int fd) : fd_(fd) {}
    Destination(Destination&& other) noexcept : fd_(std::exchange(other.fd_, kOff)) {}
    Destination& operator=(Destination&&) = delete;
    ~Destination();

   private:
    friend class AccessLogWriter;
    static constexpr int kOff = -2;
    int fd_;
  };
  // Any thread: opens `config`'s file for appending, or the log off
  // (nullopt). Changes nothing: a reload's prepare step.
  static Result<Destination> openDestination(const std::optional<conf::AccessLog>& config);
  // Control loop: the log goes to `destination` from now on; chunks
  // submitted before go to the previous file.
  void use(Destination destination);
  // openDestination() then use(). On error nothing changes.
  Status open(const std::optional<conf::AccessLog>& config);

  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // Any thread.
  void submit(std::string chunk);
  uint64_t droppedBytes() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  struct Item {
    std::string data;
    int reopenFd = -1;  // >= 0: switch to this fd (-2: close, log off)
  };
  void run();
  void push(Item item);

  // A sanctioned lock (docs/principles.md): workers hand chunks to the
  // writer thread a few times a second, so no disk write blocks a worker.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item> queue_;  // guarded by mutex_
  size_t backlog_ = 0;      // guarded by mutex_
  bool stop_ = false;       // guarded by mutex_
  std::atomic<bool> enabled_{false};
  std::atomic<uint64_t> dropped_{0};
  std::thread thread_;
};

class AccessLogBuffer {
 public:
  static constexpr size_t kFlushBytes = 64 << 10;
  static constexpr uint64_t kFlushDelayMs = 100;

  AccessLogBuffer(uv_loop_t* loop, AccessLogWriter& writer);
  ~AccessLogBuffer();  // after close()
  AccessLogBuffer(const AccessLogBuffer&) = delete;
  AccessLogBuffer& operator=(const AccessLogBuffer&) = delete;

  bool enabled() const { return writer_.enabled(); }
  void append(const AccessRecord& record);
  void flush();
  // Loop thread: flushes and closes the timer so the loop can end.
  void close();

 private:
  uv_loop_t* loop_;  // may be initialised after this is constructed
  AccessLogWriter& writer_;
  uv_timer_t* timer_ = nullptr;  // made on first use; deleted by its close callback
  bool closed_ = false;
  std::string buffer_;
};

}  // namespace tlsedge::proxy
