// Upgrade's old-process side with real child processes (/bin/sh standing in
// for the new binary): READY=1 in time hands over; an exit before it, or a
// READY=1 only after the timeout's SIGTERM, does not.
#include "daemon/upgrade.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <uv.h>

#include <optional>
#include <string>

namespace tlsedge::daemon {
namespace {

struct Outcome {
  std::optional<pid_t> ready;
  std::optional<std::string> failed;
};

// Runs `script` as the new process and the loop until the upgrade ends.
Outcome runUpgrade(const std::string& script, std::chrono::milliseconds timeout) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Outcome out;
  {
    Upgrade upgrade(
        &loop, [&](pid_t pid) { out.ready = pid; },
        [&](const std::string& why) { out.failed = why; }, timeout);
    Status started = upgrade.start({"/bin/sh", "-c", script}, {});
    EXPECT_TRUE(started.ok()) << started.error().message;
    uv_run(&loop, UV_RUN_DEFAULT);  // until its handles close
    EXPECT_FALSE(upgrade.running());
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
  return out;
}

constexpr auto kLong = std::chrono::seconds(30);

TEST(Upgrade, ReadyInTimeHandsOver) {
  const Outcome out = runUpgrade("printf READY=1 >&\"$TLSEDGE_UPGRADE_FD\"; sleep 0.2", kLong);
  ASSERT_TRUE(out.ready.has_value()) << out.failed.value_or("");
  EXPECT_GT(*out.ready, 0);
  EXPECT_FALSE(out.failed.has_value());
  int status = 0;  // the "new process" is ours to reap here
  EXPECT_EQ(::waitpid(*out.ready, &status, 0), *out.ready);
}

TEST(Upgrade, AnExitBeforeReadyIsAFailure) {
  const Outcome out = runUpgrade("exit 3", kLong);
  EXPECT_FALSE(out.ready.has_value());
  ASSERT_TRUE(out.failed.has_value());
  EXPECT_NE(out.failed->find("exited with status 3 before it was ready"), std::string::npos)
      << *out.failed;
}

TEST(Upgrade, ReadyAfterTheTimeoutIsIgnored) {
  // Like a new tlsedge that blocks SIGTERM until its loop runs: it still
  // says READY=1 after the timeout's SIGTERM, then stops. The old process
  // must not hand over to it.
  const Outcome out =
      runUpgrade("trap '' TERM; sleep 0.6; printf READY=1 >&\"$TLSEDGE_UPGRADE_FD\"; sleep 0.2",
                 std::chrono::milliseconds(200));
  EXPECT_FALSE(out.ready.has_value());
  ASSERT_TRUE(out.failed.has_value());
  EXPECT_NE(out.failed->find("was not ready within 200 ms (sent SIGTERM"), std::string::npos)
      << *out.failed;
}

}  // namespace
}  // namespace tlsedge::daemon
