// HttpClient's request ids and cancel(), on a loop of the test's own. The
// requests fail before any socket (a bad URL is reported from the loop);
// exchanges with real servers are in tests/integration/test_http_client.py.
#include <gtest/gtest.h>
#include <uv.h>

#include <string>
#include <vector>

#include "http/http_client.h"

namespace tlsedge::http {
namespace {

class HttpClientIds : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    auto made = HttpClient::create(&loop_, {});
    ASSERT_TRUE(made.ok()) << made.error().message;
    client_ = std::move(*made);
  }
  void TearDown() override {
    client_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  uint64_t sendBad(std::vector<std::string>* done) {
    HttpRequest request;
    request.url = "ftp://x/";
    return client_->send(std::move(request), [done](Result<HttpResponse> r) {
      done->push_back(r.ok() ? "ok" : r.error().message);
    });
  }

  uv_loop_t loop_{};
  std::unique_ptr<HttpClient> client_;
};

TEST_F(HttpClientIds, NeverZeroNeverReused) {
  std::vector<std::string> done;
  uint64_t a = sendBad(&done);
  uint64_t b = sendBad(&done);
  EXPECT_NE(a, 0u);
  EXPECT_NE(b, 0u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(done.empty());  // never from inside send()
  uv_run(&loop_, UV_RUN_DEFAULT);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_NE(sendBad(&done), a);
  uv_run(&loop_, UV_RUN_DEFAULT);
}

TEST_F(HttpClientIds, CancelDropsOnlyThatCallback) {
  std::vector<std::string> done;
  uint64_t a = sendBad(&done);
  uint64_t b = sendBad(&done);
  client_->cancel(a);
  client_->cancel(0);      // never an id
  client_->cancel(b + 1);  // not one (yet)
  EXPECT_EQ(client_->inFlight(), 1u);
  uv_run(&loop_, UV_RUN_DEFAULT);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_NE(done[0].find("only http:// and https://"), std::string::npos) << done[0];
  client_->cancel(b);  // finished: ignored
  client_->cancel(a);  // cancelled already: ignored
  EXPECT_EQ(client_->inFlight(), 0u);
}

TEST_F(HttpClientIds, CancelFromAnotherRequestsCallback) {
  std::vector<std::string> done;
  uint64_t second = 0;
  HttpRequest request;
  request.url = "ftp://x/";
  client_->send(std::move(request), [&](Result<HttpResponse>) {
    done.push_back("first");
    client_->cancel(second);
  });
  second = sendBad(&done);
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_EQ(done, std::vector<std::string>{"first"});
}

}  // namespace
}  // namespace tlsedge::http
