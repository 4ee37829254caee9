// Two FetchingKeyRings sharing one SQL store, as replicas share PostgreSQL:
// each server is fetched once (the store's fetch leases), the other keyring
// answers from the store, a dead holder is replaced when its lease expires,
// a failure is not fetched again at once, and a refresh another keyring made
// is not made again. Counts are taken at the (scripted) origin.
#include <optional>

#include "gtest/gtest.h"
#include "service/core/server_keys.h"
#include "service/fetch/key_sources.h"
#include "service/keyring/fetching_keyring.h"
#include "service/store/sqlite_key_store.h"
#include "tests/fakes/fake_async.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/testing/key_fixtures.h"
#include "tests/testing/server_name.h"

namespace keyverifier::keyring {
namespace {

constexpr int64_t kNowMs = 1700000000000;
constexpr int64_t kDay = 24 * 3600 * 1000;

core::ServerKeys Keys(char tag, int64_t until) {
  return *core::ParseServerKeys(
      testing::KeyResponseJson({"origin.test", {{"ed25519:a", tag}}, until}));
}

class FetchLeasesTest : public ::testing::Test {
 protected:
  FetchLeasesTest() {
    store_ = *store::SqliteKeyStore::Create(
        {absl::StrCat(::testing::TempDir(), "/leases-", ::testing::UnitTest::GetInstance()
                                                            ->current_test_info()
                                                            ->name(),
                      ".sqlite3")});
    fetch::KeySources::Options direct_only;
    direct_only.order = fetch::KeySources::Order::kDirectOnly;
    sources_ = *fetch::KeySources::Create(&origin_, {}, direct_only, clock_,
                                          observe::NoopObserver());
    for (const char* holder : {"replica-a", "replica-b"}) {
      FetchingKeyRing::Options o;
      o.lease_holder = holder;
      o.fetch_timeout = absl::Seconds(10);
      o.lease_time = absl::Seconds(15);
      o.lease_poll = absl::Milliseconds(100);
      rings_.push_back(std::make_unique<FetchingKeyRing>(*store_, sources_.get(), executor_,
                                                         scheduler_, clock_,
                                                         observe::NoopObserver(), o));
    }
  }

  // Starts a lookup of origin.test on ring `i`; its answer lands in *out.
  void Start(int i, std::optional<absl::StatusOr<KeyResult>>* out) {
    KeyQuery q(testing::Name("origin.test"));
    rings_[i]->GetKeys(q, absl::InfiniteFuture(),
                       [out](absl::StatusOr<KeyResult> r) { out->emplace(std::move(r)); });
  }
  // Lets time pass and the rechecks due run.
  void Pass(absl::Duration d) {
    clock_.Advance(d);
    scheduler_.RunUntil(clock_.Now());
  }

  testing::FakeClock clock_{absl::FromUnixMillis(kNowMs)};
  testing::InlineExecutor executor_;
  testing::ManualScheduler scheduler_;
  testing::ScriptedFetcher origin_{"origin"};
  std::unique_ptr<store::KeyStore> store_;
  std::unique_ptr<fetch::KeySources> sources_;
  std::vector<std::unique_ptr<FetchingKeyRing>> rings_;
};

TEST_F(FetchLeasesTest, TheSecondReplicaWaitsForTheFirstsFetchAndAnswersFromTheStore) {
  origin_.answer_ = Keys('a', kNowMs + kDay);
  origin_.hold_ = true;
  std::optional<absl::StatusOr<KeyResult>> a, b;
  Start(0, &a);
  Start(1, &b);
  EXPECT_EQ(origin_.calls(), 1);
  Pass(absl::Milliseconds(100));  // b checks again: a's lease still runs
  EXPECT_EQ(origin_.calls(), 1);
  EXPECT_FALSE(b.has_value());
  origin_.Release();  // a's fetch answers; a stores it and ends its lease
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(a->ok()) << a->status();
  EXPECT_EQ((*a)->source.kind, KeySource::Kind::kOrigin);
  Pass(absl::Milliseconds(100));
  ASSERT_TRUE(b.has_value());
  ASSERT_TRUE(b->ok()) << b->status();
  ASSERT_EQ((*b)->verify_keys.size(), 1u);
  EXPECT_EQ((*b)->verify_keys[0].public_key, testing::TestKey('a').public_key());
  EXPECT_EQ(origin_.calls(), 1);
}

// Waiting for another replica's lease on a name never seen before takes
// one of the new names' tokens, not one for every check: three replicas
// looking up a thousand new servers at once ran out of them.
TEST_F(FetchLeasesTest, WaitingForAnotherReplicasLeaseTakesOneNewNameToken) {
  FetchingKeyRing::Options o;
  o.lease_holder = "replica-c";
  o.fetch_timeout = absl::Seconds(10);
  o.lease_time = absl::Seconds(15);
  o.lease_poll = absl::Milliseconds(100);
  o.new_servers_per_second = 0.001;
  o.new_servers_burst = 1;
  rings_.push_back(std::make_unique<FetchingKeyRing>(*store_, sources_.get(), executor_,
                                                     scheduler_, clock_,
                                                     observe::NoopObserver(), o));
  origin_.answer_ = Keys('a', kNowMs + kDay);
  origin_.hold_ = true;
  std::optional<absl::StatusOr<KeyResult>> a, c;
  Start(0, &a);
  Start(2, &c);
  for (int i = 0; i < 10; ++i) Pass(absl::Milliseconds(100));  // c checks ten times
  EXPECT_FALSE(c.has_value());
  origin_.Release();
  Pass(absl::Milliseconds(100));
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE(c->ok()) << c->status();
  EXPECT_EQ(origin_.calls(), 1);
}

TEST_F(FetchLeasesTest, AHolderThatDiesIsReplacedWhenItsLeaseExpires) {
  origin_.answer_ = Keys('a', kNowMs + kDay);
  origin_.hold_ = true;
  std::optional<absl::StatusOr<KeyResult>> a, b;
  Start(0, &a);  // its fetch never comes back: the replica is gone
  Start(1, &b);
  for (int i = 0; i < 149; ++i) Pass(absl::Milliseconds(100));  // 14.9 s
  EXPECT_EQ(origin_.calls(), 1);
  EXPECT_FALSE(b.has_value());
  Pass(absl::Milliseconds(200));  // past the 15 s lease: b takes it and fetches
  EXPECT_EQ(origin_.calls(), 2);
  origin_.Release();
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(b->ok()) << b->status();
}

TEST_F(FetchLeasesTest, AFailedFetchIsNotRepeatedByTheOtherReplica) {
  origin_.answer_ = absl::UnavailableError("connection refused");
  origin_.hold_ = true;
  std::optional<absl::StatusOr<KeyResult>> a, b;
  Start(0, &a);
  Start(1, &b);
  origin_.Release();
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(a->ok());
  Pass(absl::Milliseconds(100));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(b->status().message().find("another replica's fetch of origin.test failed"),
            std::string::npos)
      << b->status();
  EXPECT_EQ(origin_.calls(), 1);
}

TEST_F(FetchLeasesTest, ARefreshAnotherReplicaMadeIsNotMadeAgain) {
  origin_.answer_ = Keys('a', kNowMs + kDay);
  for (int i : {0, 1}) {
    std::optional<absl::StatusOr<KeyResult>> r;
    Start(i, &r);
    ASSERT_TRUE(r.has_value() && r->ok());
  }
  EXPECT_EQ(origin_.calls(), 1);  // the second read the first's answer in the store
  Pass(absl::Hours(12));
  origin_.answer_ = Keys('a', kNowMs + 3 * kDay);
  absl::StatusOr<int64_t> a = rings_[0]->RefreshAndWait(testing::Name("origin.test"), absl::InfiniteFuture());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, kNowMs + 3 * kDay);
  EXPECT_EQ(origin_.calls(), 2);
  // The other replica's refresher finds the newer response in the store.
  Pass(absl::Seconds(1));
  absl::StatusOr<int64_t> b = rings_[1]->RefreshAndWait(testing::Name("origin.test"), absl::InfiniteFuture());
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*b, kNowMs + 3 * kDay);
  EXPECT_EQ(origin_.calls(), 2);
  // A refresh nobody made since is made.
  Pass(absl::Seconds(1));
  ASSERT_TRUE(rings_[1]->RefreshAndWait(testing::Name("origin.test"), absl::InfiniteFuture()).ok());
  EXPECT_EQ(origin_.calls(), 3);
}

}  // namespace
}  // namespace keyverifier::keyring
