#include "fleet/etcd_watch.h"

#include <nlohmann/json.hpp>

#include "net/loop.h"

namespace tlsedge::fleet {

using Json = nlohmann::json;

namespace {
constexpr size_t kMaxLine = 64 << 20;  // one revision's events (a large txn)
}  // namespace

Result<std::unique_ptr<EtcdWatch>> EtcdWatch::create(uv_loop_t* loop,
                                                     const conf::EtcdStorage& config) {
  auto options = httpOptions(config);
  if (!options) return options.error();
  auto http = http::HttpClient::create(loop, std::move(*options));
  if (!http) return http.error();
  return std::unique_ptr<EtcdWatch>(new EtcdWatch(loop, std::move(*http), config.endpoints));
}

EtcdWatch::EtcdWatch(uv_loop_t* loop, std::unique_ptr<http::HttpClient> http,
                     std::vector<std::string> endpoints)
    : http_(std::move(http)), endpoints_(std::move(endpoints)), probeTimer_(new uv_timer_t) {
  uv_timer_init(loop, probeTimer_);
  probeTimer_->data = this;
}

void EtcdWatch::close() {
  stop();
  if (probeTimer_ == nullptr) return;
  net::closeAndDelete(reinterpret_cast<uv_handle_t*>(probeTimer_), probeTimer_);
  probeTimer_ = nullptr;
}

void EtcdWatch::start(const std::string& prefix, int64_t fromRevision, OnEvents onEvents,
                      OnEnd onEnd) {
  stop();
  if (probeTimer_ == nullptr) return;  // closed
  onEvents_ = std::move(onEvents);
  onEnd_ = std::move(onEnd);
  pending_.clear();
  endWhy_ = Error{};
  compactRevision_ = 0;
  prefix_ = prefix;
  Json create{{"key", gateway::base64(prefix)},
              {"range_end", gateway::base64(prefixEnd(prefix))},
              {"start_revision", std::to_string(fromRevision)}};
  http::HttpRequest request;
  request.method = "POST";
  request.url = endpoints_[next_] + "/v3/watch";
  request.body = Json{{"create_request", std::move(create)}}.dump();
  request.headers.push_back({"Content-Type", "application/json"});
  request.headers.push_back({"Grpc-Metadata-hasleader", "true"});
  request.onBody = [this](std::string_view piece) {
    pending_.append(piece);
    size_t start = 0;
    for (size_t nl = pending_.find('\n'); nl != std::string::npos;
         nl = pending_.find('\n', start)) {
      if (!line(std::string_view(pending_).substr(start, nl - start))) return false;
      start = nl + 1;
    }
    pending_.erase(0, start);
    if (pending_.size() > kMaxLine) {
      endWhy_ = makeError("etcd watch: a message over " + std::to_string(kMaxLine) + " bytes");
      return false;
    }
    return true;
  };
  ++streams_;
  const auto every = static_cast<uint64_t>(kProbeEvery.count());
  uv_timer_start(probeTimer_, &EtcdWatch::onProbeTimer, every, every);
  request_ = http_->send(std::move(request), [this](Result<http::HttpResponse> response) {
    request_ = 0;
    if (!endWhy_.message.empty() || compactRevision_ != 0) return ended(endWhy_);
    if (!response) return ended(response.error());
    if (response->status != 200) {
      return ended(gateway::answerError(response->status, response->body));
    }
    ended(makeError("the stream ended", ErrorKind::kUnavailable));
  });
}

bool EtcdWatch::line(std::string_view text) {
  if (text.find_first_not_of(" \r\t") == std::string_view::npos) return true;
  const Json message = Json::parse(text, nullptr, false);
  if (!message.is_object()) {
    endWhy_ = makeError("etcd watch: a line is not JSON");
    return false;
  }
  if (auto error = message.find("error"); error != message.end()) {
    endWhy_ = gateway::answerError(503, text);
    return false;
  }
  auto result = message.find("result");
  if (result == message.end() || !result->is_object()) return true;
  if (result->value("canceled", false)) {
    auto compacted = gateway::integer(*result, "compact_revision");
    compactRevision_ = compacted ? *compacted : 0;
    endWhy_ = makeError(compactRevision_ != 0
                            ? "the watch's start revision was compacted (to " +
                                  std::to_string(compactRevision_) + ")"
                            : "etcd canceled the watch: " + result->value("cancel_reason", ""),
                        ErrorKind::kUnavailable);
    return false;
  }
  auto events = result->find("events");
  if (events == result->end() || !events->is_array() || events->empty()) return true;
  std::vector<Event> out;
  out.reserve(events->size());
  int64_t revision = 0;
  for (const Json& item : *events) {
    Event event;
    event.deleted = item.value("type", "") == "DELETE";
    auto kv = item.is_object() && item.contains("kv") ? gateway::keyValue(item["kv"])
                                                      : Result<KeyValue>(makeError("no kv"));
    if (!kv) {
      endWhy_ = makeError("etcd watch: a bad event: " + kv.error().message);
      return false;
    }
    event.kv = std::move(*kv);
    revision = std::max(revision, event.kv.modRevision);
    out.push_back(std::move(event));
  }
  onEvents_(revision, std::move(out));
  return true;
}

void EtcdWatch::onProbeTimer(uv_timer_t* timer) noexcept {
  static_cast<EtcdWatch*>(timer->data)->probe();
}

void EtcdWatch::probe() {
  if (request_ == 0 || probe_ != 0) return;
  const std::string& endpoint = endpoints_[next_];
  http::HttpRequest request;
  request.method = "POST";
  request.url = endpoint + "/v3/kv/range";
  // One key (the prefix itself), counted: O(log keys) for etcd, however
  // many the prefix holds, and linearizable like any read by default.
  request.body = Json{{"key", gateway::base64(prefix_)}, {"count_only", true}}.dump();
  request.headers.push_back({"Content-Type", "application/json"});
  probe_ = http_->send(std::move(request), [this, endpoint](Result<http::HttpResponse> answer) {
    probe_ = 0;
    if (answer && answer->status == 200) return;
    const Error why = answer ? gateway::answerError(answer->status, answer->body) : answer.error();
    http_->cancel(request_);
    request_ = 0;
    ended(makeError(
        "etcd member " + endpoint + " under the watch did not answer a read (" + why.message + ")",
        ErrorKind::kUnavailable));
  });
}

void EtcdWatch::ended(Error why) {
  if (probeTimer_ != nullptr) uv_timer_stop(probeTimer_);
  if (probe_ != 0) http_->cancel(probe_);
  probe_ = 0;
  if (compactRevision_ == 0) next_ = (next_ + 1) % endpoints_.size();  // try another member
  OnEnd onEnd = std::move(onEnd_);
  onEvents_ = nullptr;
  if (onEnd) onEnd(std::move(why), compactRevision_);
}

void EtcdWatch::stop() {
  if (probeTimer_ != nullptr) uv_timer_stop(probeTimer_);
  if (probe_ != 0) http_->cancel(probe_);
  probe_ = 0;
  if (request_ != 0) http_->cancel(request_);
  request_ = 0;
  onEvents_ = nullptr;
  onEnd_ = nullptr;
}

}  // namespace tlsedge::fleet
