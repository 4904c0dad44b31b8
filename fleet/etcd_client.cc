#include "fleet/etcd_client.h"

#include <openssl/base64.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "certstore/files.h"

namespace tlsedge::fleet {

using Json = nlohmann::json;

std::string prefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

namespace gateway {

std::string base64(std::string_view bytes) {
  size_t length = 0;
  EVP_EncodedLength(&length, bytes.size());
  std::string out(length, '\0');
  const size_t written =
      EVP_EncodeBlock(reinterpret_cast<uint8_t*>(out.data()),
                      reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  out.resize(written);
  return out;
}

Result<std::string> unbase64(std::string_view text) {
  size_t length = 0;
  if (!EVP_DecodedLength(&length, text.size())) return makeError("etcd: bad base64 length");
  std::string out(length, '\0');
  if (!EVP_DecodeBase64(reinterpret_cast<uint8_t*>(out.data()), &length, out.size(),
                        reinterpret_cast<const uint8_t*>(text.data()), text.size())) {
    return makeError("etcd: bad base64 in an answer");
  }
  out.resize(length);
  return out;
}

Result<int64_t> integer(const Json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return int64_t{0};
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& text = it->get_ref<const std::string&>();
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && end == text.data() + text.size()) return value;
  }
  return makeError(std::string("etcd: field `") + field + "` is not an integer");
}

Result<KeyValue> keyValue(const Json& object) {
  if (!object.is_object()) return makeError("etcd: a key-value is not an object");
  KeyValue kv;
  for (auto [field, out] : {std::pair{"key", &kv.key}, std::pair{"value", &kv.value}}) {
    auto it = object.find(field);
    if (it == object.end()) continue;
    if (!it->is_string()) return makeError(std::string("etcd: `") + field + "` is not a string");
    auto decoded = unbase64(it->get_ref<const std::string&>());
    if (!decoded) return decoded.error();
    *out = std::move(*decoded);
  }
  for (auto [field, out] : {std::pair{"create_revision", &kv.createRevision},
                            std::pair{"mod_revision", &kv.modRevision},
                            std::pair{"version", &kv.version}, std::pair{"lease", &kv.lease}}) {
    auto value = integer(object, field);
    if (!value) return value.error();
    *out = *value;
  }
  return kv;
}

Error answerError(int httpStatus, std::string_view body) {
  const Json parsed = Json::parse(body, nullptr, false);
  const Json* error = &parsed;
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    error = &parsed["error"];  // a stream's error object
  }
  std::string message;
  int code = -1;
  if (error->is_object()) {
    for (const char* field : {"message", "error"}) {
      auto it = error->find(field);
      if (it != error->end() && it->is_string()) {
        message = it->get<std::string>();
        break;
      }
    }
    for (const char* field : {"code", "grpc_code"}) {
      auto it = error->find(field);
      if (it != error->end() && it->is_number_integer()) code = it->get<int>();
    }
  }
  if (message.empty()) message = "HTTP " + std::to_string(httpStatus);
  // gRPC 14 (unavailable) and 4 (deadline), or a member without quorum
  // (HTTP 500, code 2 "context deadline exceeded", docs/etcd.md section 3):
  // this member cannot serve now, another may.
  const bool unavailable =
      httpStatus == 503 || code == 14 || code == 4 || message == "context deadline exceeded";
  return makeError(message, unavailable ? ErrorKind::kUnavailable : ErrorKind::kFailed);
}

}  // namespace gateway

namespace {

Json rangeBody(std::string_view key, std::string_view rangeEnd) {
  Json body{{"key", gateway::base64(key)}};
  if (!rangeEnd.empty()) body["range_end"] = gateway::base64(rangeEnd);
  return body;
}

const char* targetName(Compare::Target target) {
  switch (target) {
    case Compare::Target::kVersion:
      return "VERSION";
    case Compare::Target::kCreate:
      return "CREATE";
    case Compare::Target::kMod:
      return "MOD";
    case Compare::Target::kValue:
      return "VALUE";
  }
  return "";
}

const char* relationName(Compare::Relation relation) {
  switch (relation) {
    case Compare::Relation::kEqual:
      return "EQUAL";
    case Compare::Relation::kGreater:
      return "GREATER";
    case Compare::Relation::kLess:
      return "LESS";
    case Compare::Relation::kNotEqual:
      return "NOT_EQUAL";
  }
  return "";
}

Json compareJson(const Compare& c) {
  Json out = rangeBody(c.key, c.rangeEnd);
  out["target"] = targetName(c.target);
  out["result"] = relationName(c.relation);
  switch (c.target) {
    case Compare::Target::kVersion:
      out["version"] = std::to_string(c.number);
      break;
    case Compare::Target::kCreate:
      out["create_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kMod:
      out["mod_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kValue:
      out["value"] = gateway::base64(c.value);
      break;
  }
  return out;
}

Json operationJson(const Operation& op) {
  if (op.kind == Operation::Kind::kDelete) {
    return Json{{"request_delete_range", rangeBody(op.key, op.rangeEnd)}};
  }
  Json put{{"key", gateway::base64(op.key)}, {"value", gateway::base64(op.value)}};
  if (op.lease != 0) put["lease"] = std::to_string(op.lease);
  return Json{{"request_put", std::move(put)}};
}

Result<int64_t> headerRevision(const Json& answer) {
  auto header = answer.find("header");
  if (header == answer.end() || !header->is_object()) return makeError("etcd: no header");
  return gateway::integer(*header, "revision");
}

}  // namespace

Result<http::HttpClientOptions> httpOptions(const conf::EtcdStorage& config) {
  http::HttpClientOptions options;
  options.timeout = config.timeout;
  options.maxResponseBytes = 64 << 20;  // a page of a scan
  options.userAgent = "tlsedge-fleet";
  if (!config.caFile.empty()) {
    auto ca = certstore::readFile(config.caFile);
    if (!ca) return ca.error();
    options.roots.emplace_back(config.caFile, std::move(*ca));
  }
  if (!config.certFile.empty()) {
    auto cert = certstore::readFile(config.certFile);
    if (!cert) return cert.error();
    auto key = certstore::readFile(config.keyFile);
    if (!key) return key.error();
    options.clientCertificate =
        http::ClientCertificate{std::move(*cert), std::move(*key), config.certFile, config.keyFile};
  }
  return options;
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::create(const conf::EtcdStorage& config) {
  auto options = httpOptions(config);
  if (!options) return options.error();
  auto http = http::BlockingHttpClient::create(std::move(*options));
  if (!http) return http.error();
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(std::move(*http), config.endpoints, config.timeout));
}

Result<Json> EtcdClient::call(std::string_view path, const Json& body) const {
  std::string unreachable;
  const std::string text = body.dump();
  const size_t first = preferred_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const size_t at = (first + i) % endpoints_.size();
    http::HttpRequest request;
    request.method = "POST";
    request.url = endpoints_[at] + std::string(path);
    request.body = text;
    request.headers.push_back({"Content-Type", "application/json"});
    requests_.fetch_add(1, std::memory_order_relaxed);
    auto answer = http_->fetch(std::move(request));
    Error failed = answer ? Error{} : answer.error();
    if (answer && answer->status == 200) {
      Json parsed = Json::parse(answer->body, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        return makeError("etcd " + endpoints_[at] + std::string(path) + ": answer is not JSON");
      }
      preferred_.store(at, std::memory_order_relaxed);
      return parsed;
    }
    if (answer) {
      failed = gateway::answerError(answer->status, answer->body);
      if (failed.kind != ErrorKind::kUnavailable) {
        return makeError("etcd " + endpoints_[at] + ": " + failed.message, failed.kind);
      }
    }
    unreachable += (unreachable.empty() ? "" : "; ") + endpoints_[at] + ": " + failed.message;
  }
  return makeError("fleet storage unreachable: " + unreachable, ErrorKind::kUnavailable);
}

Result<EtcdClient::Range> EtcdClient::range(std::string_view key, std::string_view rangeEnd,
                                            const RangeOptions& options) const {
  Json body = rangeBody(key, rangeEnd);
  if (options.revision != 0) body["revision"] = std::to_string(options.revision);
  if (options.limit != 0) body["limit"] = std::to_string(options.limit);
  if (options.keysOnly) body["keys_only"] = true;
  if (options.countOnly) body["count_only"] = true;
  auto answer = call("/v3/kv/range", body);
  if (!answer) return answer.error();
  Range out;
  auto revision = headerRevision(*answer);
  if (!revision) return revision.error();
  out.revision = *revision;
  if (auto header = answer->find("header"); header != answer->end() && header->is_object()) {
    out.cluster = header->value("cluster_id", "");
  }
  auto count = gateway::integer(*answer, "count");
  if (!count) return count.error();
  out.count = *count;
  out.more = answer->value("more", false);
  if (auto kvs = answer->find("kvs"); kvs != answer->end() && kvs->is_array()) {
    out.kvs.reserve(kvs->size());
    for (const Json& item : *kvs) {
      auto kv = gateway::keyValue(item);
      if (!kv) return kv.error();
      out.kvs.push_back(std::move(*kv));
    }
  }
  return out;
}

Result<int64_t> EtcdClient::scan(std::string_view prefix, bool keysOnly, int64_t pageSize,
                                 const std::function<Status(std::vector<KeyValue>&)>& page) const {
  const std::string end = prefixEnd(prefix);
  std::string from(prefix);
  RangeOptions options;
  options.limit = pageSize;
  options.keysOnly = keysOnly;
  for (;;) {
    auto read = range(from, end, options);
    if (!read) return read.error();
    if (options.revision == 0) options.revision = read->revision;  // pinned from page 1
    const bool more = read->more && !read->kvs.empty();
    if (more) from = read->kvs.back().key + std::string(1, '\0');
    if (Status taken = page(read->kvs); !taken) return taken.error();
    if (!more) return options.revision;
  }
}

Result<int64_t> EtcdClient::put(std::string_view key, std::string_view value, int64_t lease) const {
  Json body{{"key", gateway::base64(key)}, {"value", gateway::base64(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  auto answer = call("/v3/kv/put", body);
  if (!answer) return answer.error();
  return headerRevision(*answer);
}

Result<int64_t> EtcdClient::remove(std::string_view key, std::string_view rangeEnd) const {
  auto answer = call("/v3/kv/deleterange", rangeBody(key, rangeEnd));
  if (!answer) return answer.error();
  return gateway::integer(*answer, "deleted");
}

Result<EtcdClient::TxnResult> EtcdClient::txn(const Txn& txn) const {
  Json compare = Json::array();
  for (const Compare& c : txn.compare) compare.push_back(compareJson(c));
  Json success = Json::array();
  for (const Operation& op : txn.success) success.push_back(operationJson(op));
  Json failure = Json::array();
  for (const Operation& op : txn.failure) failure.push_back(operationJson(op));
  auto answer = call("/v3/kv/txn", Json{{"compare", std::move(compare)},
                                        {"success", std::move(success)},
                                        {"failure", std::move(failure)}});
  if (!answer) return answer.error();
  TxnResult out;
  out.succeeded = answer->value("succeeded", false);  // absent when it failed
  auto revision = headerRevision(*answer);
  if (!revision) return revision.error();
  out.revision = *revision;
  return out;
}

Result<int64_t> EtcdClient::grantLease(int64_t ttlSeconds) const {
  auto answer = call("/v3/lease/grant", Json{{"TTL", std::to_string(ttlSeconds)}});
  if (!answer) return answer.error();
  auto id = gateway::integer(*answer, "ID");
  if (!id) return id.error();
  if (*id == 0) return makeError("etcd: lease grant answered no ID");
  return *id;
}

Result<int64_t> EtcdClient::keepAlive(int64_t lease) const {
  auto answer = call("/v3/lease/keepalive", Json{{"ID", std::to_string(lease)}});
  if (!answer) return answer.error();
  auto result = answer->find("result");
  if (result == answer->end() || !result->is_object()) {
    return makeError("etcd: lease keepalive answered no result");
  }
  return gateway::integer(*result, "TTL");  // absent: the lease is gone
}

Status EtcdClient::revokeLease(int64_t lease) const {
  auto answer = call("/v3/lease/revoke", Json{{"ID", std::to_string(lease)}});
  if (!answer) return answer.error();
  return Ok{};
}

}  // namespace tlsedge::fleet
