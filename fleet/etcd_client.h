// EtcdClient: etcd's v3 API through its JSON gateway (HTTP/1.1 POST of a
// JSON body, bytes as base64, int64 as strings; docs/etcd.md has what the
// gateway does, measured), for fleet mode's storage.
//
// The unary calls (range, put, delete, txn, leases) are blocking, on a
// private loop (http::BlockingHttpClient): for libuv's thread pool and the
// CLI, never a worker or the control loop. The watch (fleet/etcd_watch.h)
// is the one streaming call and runs on a loop.
//
// Endpoints are tried in turn: one that cannot be reached, times out or
// answers 503 (no leader, request timed out) gives way to the next, and the
// one that answered is tried first next time. When none answers the error
// (ErrorKind::kUnavailable) reads "fleet storage unreachable: URL: why;
// URL: why". A write that timed out may still have been applied (etcd does
// not say): only txn compares make a retry safe, which is what the callers
// rely on.
//
// Thread: any; calls are serialized (one private loop).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"
#include "conf/config.h"
#include "http/blocking_http_client.h"

namespace tlsedge::fleet {

struct KeyValue {
  std::string key;  // the whole etcd key, prefix included
  std::string value;
  int64_t createRevision = 0;
  int64_t modRevision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

// The end of the range of every key starting with `prefix`: the prefix
// with its last byte incremented (etcd's convention).
std::string prefixEnd(std::string_view prefix);

// A txn's compare: `target` of every key in [key, rangeEnd) (or of `key`
// alone when rangeEnd is empty) against `number` (or `value`). A range with
// no key compares as one key with zero revisions and version.
struct Compare {
  enum class Target { kVersion, kCreate, kMod, kValue };
  enum class Relation { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  std::string rangeEnd;
  Target target = Target::kMod;
  Relation relation = Relation::kEqual;
  int64_t number = 0;
  std::string value;
};

// A txn's operation: a put, or a delete of [key, rangeEnd).
struct Operation {
  enum class Kind { kPut, kDelete };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;     // kPut
  std::string rangeEnd;  // kDelete; empty: `key` alone
  int64_t lease = 0;     // kPut; 0: none
};

struct Txn {
  std::vector<Compare> compare;
  std::vector<Operation> success;
  std::vector<Operation> failure;
};

class EtcdClient {
 public:
  struct Range {
    std::vector<KeyValue> kvs;
    bool more = false;     // the range holds more than `limit` keys
    int64_t revision = 0;  // the store's revision when read
    int64_t count = 0;     // keys in the whole range
    std::string cluster;   // the cluster's id (header.cluster_id)
  };
  struct RangeOptions {
    int64_t revision = 0;  // 0: the newest
    int64_t limit = 0;     // 0: no limit
    bool keysOnly = false;
    bool countOnly = false;
  };
  struct TxnResult {
    bool succeeded = false;
    int64_t revision = 0;
  };

  // Reads the TLS files of `config` (errors name the file).
  static Result<std::unique_ptr<EtcdClient>> create(const conf::EtcdStorage& config);

  // [key, rangeEnd), or `key` alone when rangeEnd is empty.
  Result<Range> range(std::string_view key, std::string_view rangeEnd,
                      const RangeOptions& options) const;
  // Every key starting with `prefix` as of one revision, `pageSize` keys
  // at a time handed to `page` (its error stops the scan and is returned).
  // Returns the revision read.
  Result<int64_t> scan(std::string_view prefix, bool keysOnly, int64_t pageSize,
                       const std::function<Status(std::vector<KeyValue>&)>& page) const;
  // Returns the revision of the write.
  Result<int64_t> put(std::string_view key, std::string_view value, int64_t lease = 0) const;
  // Returns how many keys were deleted.
  Result<int64_t> remove(std::string_view key, std::string_view rangeEnd) const;
  Result<TxnResult> txn(const Txn& txn) const;

  // A lease of `ttlSeconds`; returns its id.
  Result<int64_t> grantLease(int64_t ttlSeconds) const;
  // One refresh; returns the TTL granted again, 0 when the lease is gone.
  Result<int64_t> keepAlive(int64_t lease) const;
  Status revokeLease(int64_t lease) const;

  const std::vector<std::string>& endpoints() const { return endpoints_; }
  // HTTP requests made so far (each endpoint tried counts), for metrics.
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }

 private:
  EtcdClient(std::unique_ptr<http::BlockingHttpClient> http, std::vector<std::string> endpoints,
             std::chrono::milliseconds timeout)
      : http_(std::move(http)), endpoints_(std::move(endpoints)), timeout_(timeout) {}
  // POSTs `body` to `path` ("/v3/kv/range") on the first endpoint that
  // answers; the JSON of a 200 answer, or the error etcd or the transport
  // gave.
  Result<nlohmann::json> call(std::string_view path, const nlohmann::json& body) const;

  std::unique_ptr<http::BlockingHttpClient> http_;
  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
  // The endpoint that answered last. Atomic: pool threads share one client,
  // and a stale value only costs a retry on another endpoint.
  mutable std::atomic<size_t> preferred_ = 0;
  mutable std::atomic<uint64_t> requests_ = 0;
};

// The HTTP client options for `config`'s endpoints: its TLS files read
// (errors name the file), config.timeout per request.
Result<http::HttpClientOptions> httpOptions(const conf::EtcdStorage& config);

// The JSON gateway's encodings, shared with the watch.
namespace gateway {
std::string base64(std::string_view bytes);
Result<std::string> unbase64(std::string_view text);
// An int64 field (a string, or a number), absent: 0.
Result<int64_t> integer(const nlohmann::json& object, const char* field);
// A KeyValue object ({key, value, create_revision, ...}; absent: zero).
Result<KeyValue> keyValue(const nlohmann::json& object);
// The error of a non-200 answer, or of a stream's error object: etcd's
// message and gRPC code when the body has them.
Error answerError(int httpStatus, std::string_view body);
}  // namespace gateway

}  // namespace tlsedge::fleet
