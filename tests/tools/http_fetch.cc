// tlsedge_http_fetch: drives http::HttpClient from the command line, for the
// integration tests (test_http_client.py). All URLs are fetched at once on
// one loop; one JSON line per URL is printed, in argument order:
//   {"url":..., "status":N, "body":..., "headers":{...}} or {"url":..., "error":...}
//
//   tlsedge_http_fetch [--root FILE]... [--timeout-ms N] [--max-bytes N]
//                      [-X METHOD] [-d BODY] [-H NAME:VALUE]... URL...
#include <uv.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "certstore/files.h"
#include "http/http_client.h"

using namespace tlsedge;

int main(int argc, char** argv) {
  http::HttpClientOptions options;
  http::HttpRequest base;
  std::vector<std::string> urls;
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
      auto text = certstore::readFile(path);
      if (!text) {
        std::fprintf(stderr, "%s\n", text.error().message.c_str());
        return 2;
      }
      options.roots.emplace_back(path, std::move(*text));
    } else if (arg == "--timeout-ms") {
      options.timeout = std::chrono::milliseconds(std::stol(value()));
    } else if (arg == "--max-bytes") {
      options.maxResponseBytes = std::stoul(value());
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
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto client = http::HttpClient::create(&loop, options);
  if (!client) {
    std::fprintf(stderr, "%s\n", client.error().message.c_str());
    return 2;
  }
  std::vector<nlohmann::json> out(urls.size());
  for (size_t i = 0; i < urls.size(); ++i) {
    http::HttpRequest request = base;
    request.url = urls[i];
    (*client)->send(std::move(request), [&out, i, url = urls[i]](Result<http::HttpResponse> r) {
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
      out[i] = std::move(line);
    });
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  client->reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  for (const auto& line : out) {
    std::printf("%s\n",
                line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return 0;
}
