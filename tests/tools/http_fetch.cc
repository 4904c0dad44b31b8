// tlsedge_http_fetch: drives http::HttpClient (or http::BlockingHttpClient)
// from the command line, for the integration tests (test_http_client.py).
// All URLs are fetched at once; one JSON line per URL is printed at the
// end, in argument order:
//   {"url":..., "status":N, "body":..., "headers":{...}} or {"url":..., "error":...}
//   or {"url":..., "cancelled":true} (--cancel-after-ms: no callback came)
// With --stream, each body piece is printed (and flushed) as it arrives,
// before those lines: {"url":..., "piece":...}.
//
//   tlsedge_http_fetch [--root FILE]... [--client-cert FILE --client-key FILE]
//                      [--timeout-ms N] [--request-timeout-ms N] [--max-bytes N]
//                      [--stream] [--stop-after PIECES] [--cancel-after-ms N]
//                      [--blocking threads|pool]
//                      [-X METHOD] [-d BODY] [-H NAME:VALUE]... URL...
//
// --cancel-after-ms: cancel(id) of the first URL's request after N ms (and
// of an unknown id, which must be ignored). --blocking: one
// BlockingHttpClient, each URL fetched on a std::thread of its own
// ("threads") or as a job on libuv's thread pool ("pool").
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "certstore/files.h"
#include "http/blocking_http_client.h"
#include "http/http_client.h"

using namespace tlsedge;

namespace {

std::string readOrExit(const std::string& path) {
  auto text = certstore::readFile(path);
  if (!text) {
    std::fprintf(stderr, "%s\n", text.error().message.c_str());
    std::exit(2);
  }
  return std::move(*text);
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json resultLine(const std::string& url, const Result<http::HttpResponse>& r) {
  nlohmann::json line = {{"url", url}};
  if (!r) {
    line["error"] = r.error().message;
  } else {
    line["status"] = r->status;
    line["body"] = r->body;
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& h : r->headers) headers[h.name] = h.value;
    line["headers"] = headers;
  }
  return line;
}

// --stream: prints each piece at once; false after `stopAfter` pieces (0: never).
std::function<bool(std::string_view)> pieceSink(const std::string& url, size_t stopAfter) {
  auto count = std::make_shared<size_t>(0);
  return [url, stopAfter, count](std::string_view piece) {
    std::printf("%s\n", dump({{"url", url}, {"piece", std::string(piece)}}).c_str());
    std::fflush(stdout);
    return stopAfter == 0 || ++*count < stopAfter;
  };
}

// --blocking pool: one fetch() as a job on libuv's thread pool.
struct PoolJob {
  uv_work_t work;
  http::BlockingHttpClient* client;
  http::HttpRequest request;
  nlohmann::json* out;
};

}  // namespace

int main(int argc, char** argv) {
  http::HttpClientOptions options;
  http::HttpRequest base;
  std::vector<std::string> urls;
  std::string clientCert, clientKey, blocking;
  bool stream = false;
  size_t stopAfter = 0;
  long cancelAfterMs = -1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--root") {
      std::string path = value();
      options.roots.emplace_back(path, readOrExit(path));
    } else if (arg == "--client-cert") {
      clientCert = value();
    } else if (arg == "--client-key") {
      clientKey = value();
    } else if (arg == "--timeout-ms") {
      options.timeout = std::chrono::milliseconds(std::stol(value()));
    } else if (arg == "--request-timeout-ms") {
      base.timeout = std::chrono::milliseconds(std::stol(value()));
    } else if (arg == "--max-bytes") {
      options.maxResponseBytes = std::stoul(value());
    } else if (arg == "--stream") {
      stream = true;
    } else if (arg == "--stop-after") {
      stopAfter = std::stoul(value());
    } else if (arg == "--cancel-after-ms") {
      cancelAfterMs = std::stol(value());
    } else if (arg == "--blocking") {
      blocking = value();
    } else if (arg == "-X") {
      base.method = value();
    } else if (arg == "-d") {
      base.body = value();
    } else if (arg == "-H") {
      std::string h = value();
      size_t colon = h.find(':');
      base.headers.push_back({h.substr(0, colon), h.substr(colon + 1)});
    } else {
      urls.push_back(arg);
    }
  }
  if (!clientCert.empty() || !clientKey.empty()) {
    options.clientCertificate = http::ClientCertificate{
        readOrExit(clientCert), readOrExit(clientKey), clientCert, clientKey};
  }
  std::vector<http::HttpRequest> requests;
  for (const auto& url : urls) {
    http::HttpRequest request = base;
    request.url = url;
    if (stream) request.onBody = pieceSink(url, stopAfter);
    requests.push_back(std::move(request));
  }
  std::vector<nlohmann::json> out(urls.size());

  if (!blocking.empty()) {
    auto client = http::BlockingHttpClient::create(options);
    if (!client) {
      std::fprintf(stderr, "%s\n", client.error().message.c_str());
      return 2;
    }
    if (blocking == "threads") {
      std::vector<std::thread> threads;
      for (size_t i = 0; i < requests.size(); ++i) {
        threads.emplace_back(
            [&, i] { out[i] = resultLine(urls[i], (*client)->fetch(std::move(requests[i]))); });
      }
      for (auto& t : threads) t.join();
    } else {
      uv_loop_t loop;
      uv_loop_init(&loop);
      std::vector<PoolJob> jobs(requests.size());
      for (size_t i = 0; i < requests.size(); ++i) {
        jobs[i].work.data = &jobs[i];
        jobs[i].client = client->get();
        jobs[i].request = std::move(requests[i]);
        jobs[i].out = &out[i];
        uv_queue_work(
            &loop, &jobs[i].work,
            [](uv_work_t* w) noexcept {
              auto* job = static_cast<PoolJob*>(w->data);
              std::string url = job->request.url;
              *job->out = resultLine(url, job->client->fetch(std::move(job->request)));
            },
            nullptr);
      }
      uv_run(&loop, UV_RUN_DEFAULT);
      uv_loop_close(&loop);
    }
  } else {
    uv_loop_t loop;
    uv_loop_init(&loop);
    auto client = http::HttpClient::create(&loop, options);
    if (!client) {
      std::fprintf(stderr, "%s\n", client.error().message.c_str());
      uv_loop_close(&loop);
      return 2;
    }
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < requests.size(); ++i) {
      ids.push_back((*client)->send(
          std::move(requests[i]),
          [&out, i, url = urls[i]](Result<http::HttpResponse> r) { out[i] = resultLine(url, r); }));
    }
    uv_timer_t cancelTimer;
    struct Cancel {
      http::HttpClient* client;
      uint64_t id;
    } cancel{client->get(), ids.empty() ? 0 : ids[0]};
    if (cancelAfterMs >= 0) {
      uv_timer_init(&loop, &cancelTimer);
      cancelTimer.data = &cancel;
      uv_timer_start(
          &cancelTimer,
          [](uv_timer_t* t) noexcept {
            auto* c = static_cast<Cancel*>(t->data);
            c->client->cancel(c->id);
            c->client->cancel(0);             // never an id
            c->client->cancel(c->id + 1000);  // not one yet
            uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
          },
          static_cast<uint64_t>(cancelAfterMs), 0);
      out[0] = {{"url", urls[0]}, {"cancelled", true}};  // unless its callback ran first
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    client->reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  for (const auto& line : out) std::printf("%s\n", dump(line).c_str());
  return 0;
}
