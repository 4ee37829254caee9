// The asynchronous vocabulary: Fanin joins results in slot order once all
// have arrived; Limiter hands slots out in arrival order; Wait blocks for a
// callback.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "service/async/callback.h"
#include "service/async/limiter.h"

namespace keyverifier::async {
namespace {

TEST(FaninTest, JoinsResultsInSlotOrderOnceAllArrived) {
  std::vector<absl::StatusOr<int>> got;
  int calls = 0;
  auto fanin = Fanin<int>::Create(3, [&](std::vector<absl::StatusOr<int>> r) {
    ++calls;
    got = std::move(r);
  });
  Callback<int> a = fanin->Slot(0), b = fanin->Slot(1), c = fanin->Slot(2);
  fanin.reset();  // the slots keep it alive
  c(3);
  a(absl::NotFoundError("none"));
  EXPECT_EQ(calls, 0);
  b(2);
  ASSERT_EQ(calls, 1);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(absl::IsNotFound(got[0].status()));
  EXPECT_EQ(*got[1], 2);
  EXPECT_EQ(*got[2], 3);
}

TEST(FaninTest, NothingToJoinIsDoneAtOnce) {
  int calls = 0;
  Fanin<int>::Create(0, [&](std::vector<absl::StatusOr<int>> r) {
    ++calls;
    EXPECT_TRUE(r.empty());
  });
  EXPECT_EQ(calls, 1);
}

TEST(FaninTest, SlotsFromManyThreads) {
  constexpr int kSlots = 200;
  std::atomic<int> sum{0};
  auto fanin = Fanin<int>::Create(kSlots, [&](std::vector<absl::StatusOr<int>> r) {
    for (const auto& v : r) sum += *v;
  });
  std::vector<std::thread> threads;
  for (int i = 0; i < kSlots; ++i) threads.emplace_back([slot = fanin->Slot(i), i]() mutable {
    slot(i);
  });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(sum.load(), kSlots * (kSlots - 1) / 2);
}

TEST(LimiterTest, SlotsInArrivalOrder) {
  Limiter limiter(2);
  std::vector<std::string> ran;
  Task a = [&] { ran.push_back("a"); }, b = [&] { ran.push_back("b"); },
       c = [&] { ran.push_back("c"); }, d = [&] { ran.push_back("d"); };
  EXPECT_TRUE(limiter.Acquire(a));
  EXPECT_TRUE(limiter.Acquire(b));
  EXPECT_FALSE(limiter.Acquire(c));  // queued
  EXPECT_FALSE(limiter.Acquire(d));
  EXPECT_FALSE(limiter.idle());
  Task next = limiter.Release();  // c takes the slot
  ASSERT_TRUE(next);
  next();
  next = limiter.Release();
  ASSERT_TRUE(next);
  next();
  EXPECT_EQ(ran, (std::vector<std::string>{"c", "d"}));
  EXPECT_FALSE(limiter.Release());
  EXPECT_FALSE(limiter.idle());  // one holder left
  EXPECT_FALSE(limiter.Release());
  EXPECT_TRUE(limiter.idle());
}

TEST(WaitTest, BlocksForTheCallbackFromAnotherThread) {
  std::thread t;
  absl::StatusOr<std::string> r = Wait<std::string>([&](Callback<std::string> done) {
    t = std::thread([done = std::move(done)]() mutable { done(std::string("answer")); });
  });
  t.join();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "answer");
}

}  // namespace
}  // namespace keyverifier::async
