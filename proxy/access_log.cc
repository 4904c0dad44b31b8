#include "proxy/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "base/json_string.h"
#include "base/log.h"
#include "base/time.h"
#include "net/loop.h"

namespace tlsedge::proxy {
namespace {

void appendField(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  appendJsonString(out, value);
}

void appendField(std::string& out, std::string_view name, int64_t value) {
  out += ",\"";
  out += name;
  out += "\":";
  out += std::to_string(value);
}

// Microseconds as milliseconds with three decimals: "12.345".
std::string millis(int64_t us) {
  if (us < 0) us = 0;
  char buf[32];
  snprintf(buf, sizeof(buf), "%lld.%03lld", static_cast<long long>(us / 1000),
           static_cast<long long>(us % 1000));
  return buf;
}

bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::string formatAccessRecord(const AccessRecord& r) {
  std::string out;
  out.reserve(256 + r.target.size() + r.host.size());
  out += "{\"time\":\"";
  utc::appendMs(out, r.startUnixMs);
  out += '"';
  appendField(out, "client", r.client);
  appendField(out, "scheme", r.tls ? "https" : "http");
  appendField(out, "site", r.site);
  appendField(out, "host", r.host);
  appendField(out, "method", r.method);
  appendField(out, "path", r.target);
  appendField(out, "protocol",
              r.versionMajor == 2   ? "HTTP/2"
              : r.versionMinor == 0 ? "HTTP/1.0"
                                    : "HTTP/1.1");
  appendField(out, "status", r.status);
  appendField(out, "bytes_in", static_cast<int64_t>(r.bytesIn));
  appendField(out, "bytes_out", static_cast<int64_t>(r.bytesOut));
  out += ",\"duration_ms\":";
  out += millis(r.durationUs);
  appendField(out, "upstream", r.upstream);
  appendField(out, "upstream_addr", r.upstreamAddr);
  out += ",\"upstream_header_ms\":";
  out += r.upstreamHeaderUs < 0 ? std::string("null") : millis(r.upstreamHeaderUs);
  out += "}\n";
  return out;
}

// ------------------------------------------------------------------- writer

AccessLogWriter::AccessLogWriter() : thread_([this] { run(); }) {}

AccessLogWriter::~AccessLogWriter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

AccessLogWriter::Destination::~Destination() {
  if (fd_ >= 0) ::close(fd_);
}

Result<AccessLogWriter::Destination> AccessLogWriter::openDestination(
    const std::optional<conf::AccessLog>& config) {
  if (!config) return Destination(Destination::kOff);
  int fd = ::open(config->path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return makeError("access_log: cannot open " + config->path + ": " + std::strerror(errno));
  }
  return Destination(fd);
}

void AccessLogWriter::use(Destination destination) {
  const int fd = std::exchange(destination.fd_, Destination::kOff);
  push(Item{{}, fd});  // the writer thread switches (kOff: closes, log off)
  enabled_.store(fd >= 0, std::memory_order_relaxed);
}

Status AccessLogWriter::open(const std::optional<conf::AccessLog>& config) {
  auto destination = openDestination(config);
  if (!destination) return destination.error();
  use(std::move(*destination));
  return Ok{};
}

void AccessLogWriter::submit(std::string chunk) {
  {
    std::lock_guard lock(mutex_);
    if (backlog_ + chunk.size() > kMaxBacklogBytes) {
      dropped_.fetch_add(chunk.size(), std::memory_order_relaxed);
      return;
    }
    backlog_ += chunk.size();
    queue_.push_back(Item{std::move(chunk), -1});
  }
  wake_.notify_one();
}

void AccessLogWriter::push(Item item) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(item));
  }
  wake_.notify_one();
}

void AccessLogWriter::run() {
  int fd = -1;
  bool reported = false;  // one error line per file, not one per chunk
  for (;;) {
    std::deque<Item> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty() && stop_) break;
      batch.swap(queue_);
    }
    size_t written = 0;
    for (Item& item : batch) {
      if (item.reopenFd != -1) {
        if (fd >= 0) ::close(fd);
        fd = item.reopenFd >= 0 ? item.reopenFd : -1;
        reported = false;
        continue;
      }
      written += item.data.size();
      if (fd < 0 || writeAll(fd, item.data) || reported) continue;
      reported = true;
      log::error(std::string("access log write failed: ") + std::strerror(errno));
    }
    std::lock_guard lock(mutex_);
    backlog_ -= written;
  }
  if (fd >= 0) ::close(fd);
}

// ------------------------------------------------------------------- buffer

AccessLogBuffer::AccessLogBuffer(uv_loop_t* loop, AccessLogWriter& writer)
    : loop_(loop), writer_(writer) {}

AccessLogBuffer::~AccessLogBuffer() = default;

void AccessLogBuffer::append(const AccessRecord& record) {
  if (!writer_.enabled()) return;
  buffer_ += formatAccessRecord(record);
  if (buffer_.size() >= kFlushBytes || closed_) {
    flush();
    return;
  }
  if (timer_ == nullptr) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    timer_->data = this;
  }
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(timer_))) {
    uv_timer_start(
        timer_, [](uv_timer_t* t) noexcept { static_cast<AccessLogBuffer*>(t->data)->flush(); },
        kFlushDelayMs, 0);
  }
}

void AccessLogBuffer::flush() {
  if (timer_ != nullptr) uv_timer_stop(timer_);
  if (buffer_.empty()) return;
  std::string chunk;
  chunk.reserve(kFlushBytes + 1024);
  chunk.swap(buffer_);
  writer_.submit(std::move(chunk));
}

void AccessLogBuffer::close() {
  flush();
  closed_ = true;  // records after this (connections closing late) go out at once
  if (timer_ == nullptr) return;
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(timer_), timer_);
  timer_ = nullptr;
}

}  // namespace tlsedge::proxy
