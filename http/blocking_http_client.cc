#include "http/blocking_http_client.h"

#include <optional>
#include <utility>

namespace tlsedge::http {

Result<std::unique_ptr<BlockingHttpClient>> BlockingHttpClient::create(HttpClientOptions options) {
  std::unique_ptr<BlockingHttpClient> self(new BlockingHttpClient());
  if (int rc = uv_loop_init(&self->loop_); rc != 0) {
    return makeError(std::string("HTTP client: cannot make a loop: ") + uv_strerror(rc));
  }
  self->loopOpen_ = true;
  auto client = HttpClient::create(&self->loop_, std::move(options));
  if (!client) return client.error();
  self->client_ = std::move(*client);
  self->client_->resolveInline_ = true;  // callers may be threads of libuv's pool
  return self;
}

BlockingHttpClient::~BlockingHttpClient() {
  if (!loopOpen_) return;
  client_.reset();                 // nothing is in flight outside fetch()
  uv_run(&loop_, UV_RUN_DEFAULT);  // closes that are still pending, if any
  uv_loop_close(&loop_);
}

Result<HttpResponse> BlockingHttpClient::fetch(HttpRequest request) {
  // Sanctioned exception (docs/principles.md): a mutex held across I/O, the
  // whole exchange; the private loop can only be run by one thread at a time.
  std::lock_guard<std::mutex> lock(mutex_);
  std::optional<Result<HttpResponse>> result;
  uint64_t id = client_->send(std::move(request),
                              [&result](Result<HttpResponse> r) { result = std::move(r); });
  // Returns once nothing is left on the loop: the exchange's handles are
  // closed after `done`, and it keeps one active until then.
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (!result) {  // not expected; never leave a callback that points here
    client_->cancel(id);
    uv_run(&loop_, UV_RUN_DEFAULT);
    return makeError("HTTP client: the exchange ended without a result");
  }
  return std::move(*result);
}

}  // namespace tlsedge::http
