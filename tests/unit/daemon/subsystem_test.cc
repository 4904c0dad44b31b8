// reconfigure(): every prepare before any commit; a refusal commits nothing
// and aborts exactly those already prepared, in reverse order.
#include "daemon/subsystem.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tlsedge::daemon {
namespace {

class Recorder final : public Subsystem {
 public:
  Recorder(std::string name, std::vector<std::string>* calls, bool refuse = false)
      : name_(std::move(name)), calls_(calls), refuse_(refuse) {}
  Status prepare(const proxy::Generation&) override {
    calls_->push_back("prepare " + name_);
    if (refuse_) return makeError(name_ + " refuses");
    return Ok{};
  }
  void commit(const proxy::GenerationPtr& next) override {
    calls_->push_back("commit " + name_);
    committed = next;
  }
  void abort() override { calls_->push_back("abort " + name_); }
  proxy::GenerationPtr committed;

 private:
  std::string name_;
  std::vector<std::string>* calls_;
  bool refuse_;
};

TEST(Reconfigure, PreparesAllThenCommitsAllInOrder) {
  std::vector<std::string> calls;
  Recorder a("a", &calls), b("b", &calls), c("c", &calls);
  const std::vector<Subsystem*> all{&a, &b, &c};
  auto next = std::make_shared<proxy::Generation>();
  ASSERT_TRUE(reconfigure(all, next).ok());
  EXPECT_EQ(calls, (std::vector<std::string>{"prepare a", "prepare b", "prepare c", "commit a",
                                             "commit b", "commit c"}));
  EXPECT_EQ(c.committed, next);
}

TEST(Reconfigure, ARefusalCommitsNothingAndAbortsThePreparedInReverse) {
  std::vector<std::string> calls;
  Recorder a("a", &calls), b("b", &calls), c("c", &calls, /*refuse=*/true), d("d", &calls);
  const std::vector<Subsystem*> all{&a, &b, &c, &d};
  auto refused = reconfigure(all, std::make_shared<proxy::Generation>());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "c refuses");
  EXPECT_EQ(calls, (std::vector<std::string>{"prepare a", "prepare b", "prepare c", "abort b",
                                             "abort a"}));
  EXPECT_EQ(a.committed, nullptr);
}

TEST(Reconfigure, TheFirstRefusesAndNothingElseRuns) {
  std::vector<std::string> calls;
  Recorder a("a", &calls, /*refuse=*/true), b("b", &calls);
  const std::vector<Subsystem*> all{&a, &b};
  EXPECT_FALSE(reconfigure(all, std::make_shared<proxy::Generation>()).ok());
  EXPECT_EQ(calls, (std::vector<std::string>{"prepare a"}));
}

}  // namespace
}  // namespace tlsedge::daemon
