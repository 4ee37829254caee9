// Refresher: due times, backoff, forgetting; passes driven by RunOnce with a
// fake clock.
#include "service/keyring/refresher.h"

#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "service/store/memory_key_store.h"
#include "tests/fakes/fake_async.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/testing/key_fixtures.h"
#include "tests/testing/server_name.h"

namespace keyverifier::keyring {
namespace {

using ::keyverifier::testing::Name;

constexpr int64_t kNowMs = 1700000000000;
constexpr int64_t kHour = 3600 * 1000;

core::ServerKeys Keys(const std::string& server, int64_t until) {
  return *core::ParseServerKeys(testing::KeyResponseJson({server, {{"ed25519:a", 'a'}}, until}));
}

class RefresherTest : public ::testing::Test {
 protected:
  RefresherTest() {
    store_ = *store::MemoryKeyStore::Create();
    sources_ = *fetch::KeySources::Create(&origin_, {}, {fetch::KeySources::Order::kDirectOnly, 1},
                                          clock_, observer_);
    ring_ = std::make_unique<FetchingKeyRing>(*store_, sources_.get(), executor_, scheduler_,
                                              clock_, observer_, FetchingKeyRing::Options());
    Refresher::Options o;
    o.jitter = 0.5;
    refresher_ = std::make_unique<Refresher>(*ring_, clock_, observer_, o, [] { return 0.0; });
  }
  void Ask(const std::string& server) {
    KeyQuery q(Name(server));
    (void)ring_->GetKeysAndWait(q, absl::Now() + absl::Seconds(5));
  }
  absl::Time At(int64_t ms) { return absl::FromUnixMillis(ms); }

  testing::FakeClock clock_{absl::FromUnixMillis(kNowMs)};
  testing::InlineExecutor executor_;
  testing::ManualScheduler scheduler_;
  observe::Observer observer_;
  testing::ScriptedFetcher origin_{"origin"};
  std::unique_ptr<store::KeyStore> store_;
  std::unique_ptr<fetch::KeySources> sources_;
  std::unique_ptr<FetchingKeyRing> ring_;
  std::unique_ptr<Refresher> refresher_;
};

TEST_F(RefresherTest, RefreshesAtHalfTheRemainingLife) {
  origin_.answer_ = Keys("a.test", kNowMs + 48 * kHour);
  Ask("a.test");
  ASSERT_EQ(origin_.calls(), 1);
  EXPECT_EQ(refresher_->RunOnce().refreshed, 0);  // tracks it now
  EXPECT_EQ(refresher_->DueTime(Name("a.test")), At(kNowMs + 24 * kHour));
  clock_.Advance(absl::Hours(24) - absl::Seconds(1));
  EXPECT_EQ(refresher_->RunOnce().refreshed, 0);
  EXPECT_EQ(origin_.calls(), 1);
  clock_.Advance(absl::Seconds(1));
  origin_.answer_ = Keys("a.test", kNowMs + 72 * kHour);
  Refresher::Pass p = refresher_->RunOnce();
  EXPECT_EQ(p.refreshed, 1);
  EXPECT_EQ(p.tracked, 1u);
  EXPECT_EQ(origin_.calls(), 2);
  // Fetched at +24h, valid until +72h: next at +48h.
  EXPECT_EQ(refresher_->DueTime(Name("a.test")), At(kNowMs + 48 * kHour));
}

TEST_F(RefresherTest, JitterComesOffTheWait) {
  Refresher::Options o;
  o.jitter = 0.5;
  Refresher jittery(*ring_, clock_, observer_, o, [] { return 1.0; });
  origin_.answer_ = Keys("a.test", kNowMs + 48 * kHour);
  Ask("a.test");
  jittery.RunOnce();
  EXPECT_EQ(jittery.DueTime(Name("a.test")), At(kNowMs + 12 * kHour));
}

TEST_F(RefresherTest, ValidityBeyondSevenDaysCountsAsSevenDays) {
  origin_.answer_ = Keys("a.test", kNowMs + 365 * 24 * kHour);
  Ask("a.test");
  refresher_->RunOnce();
  EXPECT_EQ(refresher_->DueTime(Name("a.test")), At(kNowMs + 84 * kHour));
}

TEST_F(RefresherTest, NeverSoonerThanTheMinimumInterval) {
  origin_.answer_ = Keys("a.test", kNowMs + 60 * 1000);  // valid one minute
  Ask("a.test");
  refresher_->RunOnce();
  EXPECT_EQ(refresher_->DueTime(Name("a.test")), At(kNowMs) + absl::Minutes(5));
}

TEST_F(RefresherTest, FailuresBackOffExponentially) {
  origin_.answer_ = Keys("a.test", kNowMs + 2 * kHour);
  Ask("a.test");
  refresher_->RunOnce();
  clock_.Advance(absl::Hours(1));
  origin_.answer_ = absl::UnavailableError("down");
  Refresher::Pass p = refresher_->RunOnce();
  EXPECT_EQ(p.failed, 1);
  EXPECT_EQ(p.backing_off, 1u);
  EXPECT_EQ(origin_.calls(), 2);
  clock_.Advance(absl::Seconds(59));
  EXPECT_EQ(refresher_->RunOnce().failed, 0);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(refresher_->RunOnce().failed, 1);  // after 1 minute
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(refresher_->RunOnce().failed, 0);  // now 2 minutes
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(refresher_->RunOnce().failed, 1);
  origin_.answer_ = Keys("a.test", kNowMs + 10 * kHour);
  clock_.Advance(absl::Minutes(4));
  p = refresher_->RunOnce();
  EXPECT_EQ(p.refreshed, 1);
  EXPECT_EQ(p.backing_off, 0u);
}

TEST_F(RefresherTest, ServersNotAskedForAWeekAreForgotten) {
  origin_.answer_ = Keys("a.test", kNowMs + 2 * kHour);
  Ask("a.test");
  EXPECT_EQ(refresher_->RunOnce().tracked, 1u);
  clock_.Advance(absl::Hours(24 * 7) + absl::Seconds(1));
  Refresher::Pass p = refresher_->RunOnce();
  EXPECT_EQ(p.tracked, 0u);
  EXPECT_EQ(p.refreshed, 0);
}

TEST_F(RefresherTest, RefreshesManyServers) {
  for (int i = 0; i < 20; ++i) {
    std::string server = "s" + std::to_string(i) + ".test";
    origin_.SetFor(server, Keys(server, kNowMs + 2 * kHour));
    Ask(server);
  }
  refresher_->RunOnce();
  clock_.Advance(absl::Hours(1));
  Refresher::Pass p = refresher_->RunOnce();
  EXPECT_EQ(p.refreshed, 20);
  EXPECT_EQ(p.failed, 0);
  EXPECT_EQ(origin_.calls(), 40);
}

TEST_F(RefresherTest, AnswerForAnotherServerIsNotTaken) {
  origin_.answer_ = Keys("other.test", kNowMs + 2 * kHour);
  KeyQuery q(Name("a.test"));
  absl::StatusOr<KeyResult> r = ring_->GetKeysAndWait(q, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(store_->GetKeys("other.test")->empty());
}

TEST_F(RefresherTest, StartRunsPassesInTheBackgroundUntilStop) {
  origin_.answer_ = absl::UnavailableError("down");
  Ask("a.test");  // failed: due again at once
  ASSERT_EQ(origin_.calls(), 1);
  origin_.answer_ = Keys("a.test", kNowMs + 2 * kHour);
  clock_.Advance(absl::Minutes(1));  // past the keyring's own backoff
  refresher_->Start();
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (origin_.calls() < 2 && absl::Now() < give_up) std::this_thread::yield();
  refresher_->Stop();
  EXPECT_EQ(origin_.calls(), 2);
  EXPECT_EQ(ring_->FreshnessOf(Name("a.test")).valid_until_ts, kNowMs + 2 * kHour);
  refresher_->Stop();  // twice is fine
}

}  // namespace
}  // namespace keyverifier::keyring
