// BlockingHttpClient: HttpClient for a thread without a loop of its own
// (the CLI, a job on libuv's thread pool): fetch() sends one request and
// runs a private loop until that exchange has ended.
//
// Never on a worker or the control loop: fetch() blocks its thread for
// the whole exchange (principles.md, rule 1).
// Thread: any; fetch() may be called from several threads at once, and the
// calls are serialized (a mutex: the private loop can be run by one thread
// at a time, principles.md's sanctioned exceptions). Names are resolved on
// the calling thread (blocking getaddrinfo), not on libuv's thread pool,
// so that callers on that pool never wait for a thread of their own pool.
// Lifetime: destroy it on a thread that is not inside fetch().
#pragma once

#include <uv.h>

#include <memory>
#include <mutex>

#include "base/result.h"
#include "http/http_client.h"

namespace tlsedge::http {

class BlockingHttpClient {
 public:
  // HttpClient::create's errors (roots, client certificate), or a loop
  // that cannot be made.
  static Result<std::unique_ptr<BlockingHttpClient>> create(HttpClientOptions options);
  ~BlockingHttpClient();
  BlockingHttpClient(const BlockingHttpClient&) = delete;
  BlockingHttpClient& operator=(const BlockingHttpClient&) = delete;

  // Sends `request` and returns once its exchange has ended: the response,
  // or HttpClient's error for it. A streaming request (request.onBody) is
  // served the same way: its sink is called on this thread, inside fetch(),
  // and fetch() returns when the stream ends (the server ends it, it fails,
  // or the sink returns false). The sink must not call fetch() on this
  // client (the mutex is held).
  Result<HttpResponse> fetch(HttpRequest request);

 private:
  BlockingHttpClient() = default;

  std::mutex mutex_;  // held for a whole fetch(): see the header comment
  uv_loop_t loop_{};
  bool loopOpen_ = false;
  std::unique_ptr<HttpClient> client_;
};

}  // namespace tlsedge::http
