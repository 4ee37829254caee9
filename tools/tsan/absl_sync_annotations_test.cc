// Checks, in the ThreadSanitizer build (--config=tsan), that the abseil
// annotations (absl_sync_annotations.cc) give TSan the happens-before
// edges of absl::Mutex, CondVar, Notification, BlockingCounter and Status's
// reference count, and that
// TSan still reports a race they do not cover. Skipped in other builds.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace {

#if defined(__SANITIZE_THREAD__)
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif

const char* self = nullptr;

// Plain ints, guarded only by the abseil primitive under test: without its
// annotation, TSan reports the accesses (and halt_on_error fails the test).
TEST(AbslSyncAnnotationsTest, MutexGuardsPlainData) {
  absl::Mutex mu;
  int counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        absl::MutexLock lock(&mu);
        ++counter;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counter, 4000);
}

TEST(AbslSyncAnnotationsTest, AwaitAndConditionsSeeTheWriter) {
  absl::Mutex mu;
  int value = 0;
  bool ready = false;
  std::thread writer([&] {
    absl::MutexLock lock(&mu);
    value = 42;
    ready = true;
  });
  {
    absl::MutexLock lock(&mu, absl::Condition(&ready));
    EXPECT_EQ(value, 42);
  }
  writer.join();
}

TEST(AbslSyncAnnotationsTest, CondVarWaitSeesTheSignaller) {
  absl::Mutex mu;
  absl::CondVar cv;
  int value = 0;
  std::thread writer([&] {
    absl::MutexLock lock(&mu);
    value = 7;
    cv.Signal();
  });
  {
    absl::MutexLock lock(&mu);
    while (value == 0) cv.Wait(&mu);
    EXPECT_EQ(value, 7);
  }
  writer.join();
}

TEST(AbslSyncAnnotationsTest, NotificationAndBlockingCounterOrderTheirData) {
  std::string message;
  absl::Notification notified;
  std::thread writer([&] {
    message = "written before Notify";
    notified.Notify();
  });
  notified.WaitForNotification();
  EXPECT_EQ(message, "written before Notify");
  writer.join();

  int a = 0, b = 0;
  absl::BlockingCounter counter(2);
  std::thread ta([&] { a = 1; counter.DecrementCount(); });
  std::thread tb([&] { b = 2; counter.DecrementCount(); });
  counter.Wait();
  EXPECT_EQ(a + b, 3);
  ta.join();
  tb.join();

  std::string polled;
  absl::Notification done;
  std::thread poller_writer([&] {
    polled = "seen through HasBeenNotified";
    done.Notify();
  });
  while (!done.HasBeenNotified()) std::this_thread::yield();
  EXPECT_EQ(polled, "seen through HasBeenNotified");
  poller_writer.join();
}

// Copies of one Status read its message on several threads and are dropped
// there; whichever drops the last frees the message the others read.
TEST(AbslSyncAnnotationsTest, StatusCopiesSharedAcrossThreads) {
  for (int round = 0; round < 20; ++round) {
    absl::Status shared = absl::UnavailableError(std::string(100, 'x'));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([copy = shared]() mutable {
        EXPECT_EQ(copy.message().size(), 100u);
        copy = absl::OkStatus();
      });
    }
    shared = absl::OkStatus();
    for (std::thread& t : threads) t.join();
  }
}

// The annotations must not hide races: the same program with the lock left
// out (run as a child process, since TSan ends it) is reported.
TEST(AbslSyncAnnotationsTest, AnUnguardedRaceIsStillReported) {
  if (!kTsan) GTEST_SKIP() << "only meaningful in the ThreadSanitizer build";
  const std::string command = std::string(self) + " --race 2>&1";
  FILE* child = popen(command.c_str(), "r");
  ASSERT_NE(child, nullptr);
  std::string output;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, child)) output.append(buf, n);
  const int status = pclose(child);
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("WARNING: ThreadSanitizer: data race"), std::string::npos) << output;
}

// The child: two threads increment a plain int, one under a Mutex and one
// without.
int Race() {
  absl::Mutex mu;
  int counter = 0;
  std::thread guarded([&] {
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock lock(&mu);
      ++counter;
    }
  });
  std::thread unguarded([&] {
    for (int i = 0; i < 1000; ++i) ++counter;
  });
  guarded.join();
  unguarded.join();
  std::printf("%d\n", counter);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  self = argv[0];
  if (argc == 2 && std::string(argv[1]) == "--race") return Race();
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
