// net::OffloadLane on a real uv loop and libuv's thread pool: jobs run one
// at a time in the order asked, each `done` before the next `work`, and a
// closed lane calls no `done`.
#include "net/offload_lane.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace tlsedge::net {
namespace {

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() { EXPECT_EQ(uv_loop_close(&loop), 0); }
};

TEST(OffloadLane, RunsJobsOneAtATimeInTheOrderAsked) {
  Loop l;
  std::vector<std::string> events;  // loop thread only
  std::atomic<int> running{0};
  std::atomic<int> overlapped{0};
  auto trace = std::make_shared<std::vector<int>>();  // written by `work`, one at a time
  {
    OffloadLane lane(&l.loop);
    for (int i = 0; i < 8; ++i) {
      lane.run<int>(
          [i, trace, &running, &overlapped] {
            if (running.fetch_add(1) != 0) overlapped.fetch_add(1);
            // The later the job, the shorter its work: a pool running them
            // side by side would finish them out of order.
            std::this_thread::sleep_for(std::chrono::milliseconds(8 - i));
            trace->push_back(i);
            running.fetch_sub(1);
            return i * 10;
          },
          [i, &events, &lane](int value) {
            events.push_back(std::to_string(i) + ":" + std::to_string(value));
            EXPECT_EQ(lane.pending(), static_cast<size_t>(7 - i));
          });
    }
    EXPECT_EQ(lane.pending(), 8u);
    EXPECT_TRUE(events.empty());  // never inside run()
    uv_run(&l.loop, UV_RUN_DEFAULT);
    EXPECT_EQ(lane.pending(), 0u);
  }
  EXPECT_EQ(overlapped.load(), 0);
  EXPECT_EQ(*trace, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(events, (std::vector<std::string>{"0:0", "1:10", "2:20", "3:30", "4:40", "5:50", "6:60",
                                              "7:70"}));
}

TEST(OffloadLane, ADoneMayAskForMoreAndItRunsAfterTheQueued) {
  Loop l;
  std::vector<std::string> events;
  OffloadLane lane(&l.loop);
  lane.run<int>([] { return 1; },
                [&](int) {
                  events.push_back("first");
                  lane.run<int>([] { return 3; }, [&](int) { events.push_back("asked by first"); });
                });
  lane.run<int>([] { return 2; }, [&](int) { events.push_back("second"); });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  EXPECT_EQ(events, (std::vector<std::string>{"first", "second", "asked by first"}));
}

TEST(OffloadLane, ClosedOrDestroyedItCallsNoDoneButTheRunningWorkFinishes) {
  Loop l;
  auto finished = std::make_shared<std::atomic<int>>(0);
  int dones = 0;
  {
    auto lane = std::make_unique<OffloadLane>(&l.loop);
    for (int i = 0; i < 3; ++i) {
      lane->run<int>(
          [finished] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            return finished->fetch_add(1);
          },
          [&](int) { ++dones; });
    }
    lane.reset();  // the first job runs on the pool; the other two never start
  }
  uv_run(&l.loop, UV_RUN_DEFAULT);  // ends once the pool has finished the running job
  EXPECT_EQ(dones, 0);
  EXPECT_EQ(finished->load(), 1);

  OffloadLane closed(&l.loop);
  closed.close();
  closed.run<int>([finished] { return finished->fetch_add(1); }, [&](int) { ++dones; });
  EXPECT_EQ(closed.pending(), 0u);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  EXPECT_EQ(dones, 0);
  EXPECT_EQ(finished->load(), 1);
}

TEST(OffloadLane, ADoneMayDestroyTheLane) {
  Loop l;
  auto lane = std::make_unique<OffloadLane>(&l.loop);
  bool second = false;
  lane->run<int>([] { return 0; }, [&](int) { lane.reset(); });
  lane->run<int>([] { return 0; }, [&](int) { second = true; });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  EXPECT_EQ(lane, nullptr);
  EXPECT_FALSE(second);
}

}  // namespace
}  // namespace tlsedge::net
