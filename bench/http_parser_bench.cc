// HTTP/1.1 request parsing: HttpParser on llhttp, as a worker sees requests.
#include <benchmark/benchmark.h>

#include <string>

#include "http/http_parser.h"

namespace tlsedge::net {
namespace {

// A typical browser navigation request: 546 bytes, 11 headers.
const std::string kBrowserGet =
    "GET /products/shoes/running?color=blue&size=42 HTTP/1.1\r\n"
    "Host: www.shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://www.shop.example.com/products/shoes\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "\r\n";

// Counts what a connection would act on, so nothing is optimized away.
class CountingHandler : public http::HttpParser::Handler {
 public:
  void onHead(http::MessageHead& head) override {
    ++heads;
    headers += head.headers.size();
    benchmark::DoNotOptimize(head.find("host"));
  }
  void onBody(std::string_view data) override { bodyBytes += data.size(); }
  void onMessageComplete() override { ++complete; }

  size_t heads = 0;
  size_t headers = 0;
  size_t bodyBytes = 0;
  size_t complete = 0;
};

// One request per feed() on a long-lived keep-alive parser.
void BM_ParseBrowserGet(benchmark::State& state) {
  CountingHandler handler;
  http::HttpParser parser(http::HttpParser::Kind::kRequest, handler);
  for (auto _ : state) {
    const size_t n = parser.feed(kBrowserGet.data(), kBrowserGet.size());
    if (n != kBrowserGet.size() || parser.failed()) state.SkipWithError("parse failed");
  }
  if (handler.complete != static_cast<size_t>(state.iterations())) {
    state.SkipWithError("message count mismatch");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kBrowserGet.size()));
}
BENCHMARK(BM_ParseBrowserGet);

// A fresh parser per request (a new connection's first request).
void BM_ParseBrowserGetNewParser(benchmark::State& state) {
  CountingHandler handler;
  for (auto _ : state) {
    http::HttpParser parser(http::HttpParser::Kind::kRequest, handler);
    const size_t n = parser.feed(kBrowserGet.data(), kBrowserGet.size());
    if (n != kBrowserGet.size() || parser.failed()) state.SkipWithError("parse failed");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kBrowserGet.size()));
}
BENCHMARK(BM_ParseBrowserGetNewParser);

// 16 pipelined requests arriving in one read, parsed by one feed().
void BM_ParsePipelined16(benchmark::State& state) {
  constexpr int kBatch = 16;
  std::string batch;
  for (int i = 0; i < kBatch; ++i) batch += kBrowserGet;
  CountingHandler handler;
  http::HttpParser parser(http::HttpParser::Kind::kRequest, handler);
  for (auto _ : state) {
    const size_t n = parser.feed(batch.data(), batch.size());
    if (n != batch.size() || parser.failed()) state.SkipWithError("parse failed");
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(batch.size()));
}
BENCHMARK(BM_ParsePipelined16);

// The same batch, with the connection pausing after each message and
// resuming (what a proxy does to serve pipelined requests in order).
void BM_ParsePipelined16PauseResume(benchmark::State& state) {
  constexpr int kBatch = 16;
  std::string batch;
  for (int i = 0; i < kBatch; ++i) batch += kBrowserGet;
  struct PausingHandler : CountingHandler {
    void onMessageComplete() override {
      CountingHandler::onMessageComplete();
      parser->pause();
    }
    http::HttpParser* parser = nullptr;
  } handler;
  http::HttpParser parser(http::HttpParser::Kind::kRequest, handler);
  handler.parser = &parser;
  for (auto _ : state) {
    size_t off = 0;
    while (off < batch.size()) {
      const size_t n = parser.feed(batch.data() + off, batch.size() - off);
      if (n == 0 || parser.failed()) {
        state.SkipWithError("parse failed");
        break;
      }
      off += n;
      parser.resume();
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(batch.size()));
}
BENCHMARK(BM_ParsePipelined16PauseResume);

}  // namespace
}  // namespace tlsedge::net
