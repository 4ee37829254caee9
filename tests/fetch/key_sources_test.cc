// KeySources: order, fallback, concurrency and quorum, over scripted fetchers.
#include "service/fetch/key_sources.h"

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/testing/key_fixtures.h"

namespace keyverifier::fetch {
namespace {

using testing::ScriptedFetcher;

constexpr int64_t kUntil = 1800000000000;

core::ServerKeys Keys(char tag, int64_t until = kUntil, const std::string& id = "ed25519:a") {
  return *core::ParseServerKeys(testing::KeyResponseJson({"origin.test", {{id, tag}}, until}));
}

class CountingObserver : public observe::Observer {
 public:
  void OnKeyFetch(absl::string_view source, absl::string_view outcome,
                  absl::Duration) override {
    absl::MutexLock lock(&mu_);
    ++fetches[absl::StrCat(source, " ", outcome)];
  }
  void OnKeyDisagreement(absl::string_view) override {
    absl::MutexLock lock(&mu_);
    ++disagreements;
  }
  absl::Mutex mu_;
  std::map<std::string, int> fetches;
  int disagreements = 0;
};

class KeySourcesTest : public ::testing::Test {
 protected:
  std::unique_ptr<KeySources> Make(KeySources::Options o, bool with_direct = true) {
    std::vector<KeyFetcher*> notaries = {&n1_, &n2_};
    auto s = KeySources::Create(with_direct ? &direct_ : nullptr, notaries, o, clock_, observer_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  static absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

  testing::FakeClock clock_{absl::FromUnixSeconds(1700000000)};
  CountingObserver observer_;
  ScriptedFetcher direct_{"origin"};
  ScriptedFetcher n1_{"n1.test"};
  ScriptedFetcher n2_{"n2.test"};
};

TEST_F(KeySourcesTest, DirectFirstUsesTheOriginWhenItAnswers) {
  direct_.answer_ = Keys('a');
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test"}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->satisfies);
  EXPECT_EQ(r->sources, std::vector<std::string>{"origin"});
  EXPECT_EQ(n1_.calls() + n2_.calls(), 0);
  EXPECT_EQ(observer_.fetches["origin ok"], 1);
}

TEST_F(KeySourcesTest, FallsBackToNotariesWhenTheOriginFails) {
  direct_.answer_ = absl::UnavailableError("origin down");
  n1_.answer_ = absl::UnavailableError("n1 down");
  n2_.answer_ = Keys('a');
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test"}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sources, std::vector<std::string>{"n2.test"});
  EXPECT_TRUE(absl::StrContains(absl::StrJoin(r->failures, "|"), "origin down"));
}

TEST_F(KeySourcesTest, NotariesFirstAsksNoOriginWhenANotaryAnswers) {
  n1_.answer_ = Keys('a');
  n2_.answer_ = Keys('a');
  auto s = Make({KeySources::Order::kNotariesFirst, 1});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test"}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(direct_.calls(), 0);
}

TEST_F(KeySourcesTest, DirectOnlyNeverAsksNotaries) {
  direct_.answer_ = absl::UnavailableError("origin down");
  n1_.answer_ = Keys('a');
  auto s = Make({KeySources::Order::kDirectOnly, 1});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test"}, Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(n1_.calls(), 0);
}

TEST_F(KeySourcesTest, AnAnswerNotValidLongEnoughPassesToTheNextSource) {
  direct_.answer_ = Keys('a', kUntil - 1000);
  n1_.answer_ = Keys('a', kUntil);
  n2_.answer_ = absl::UnavailableError("n2 down");
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test", {}, kUntil}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->satisfies);
  EXPECT_EQ(r->sources, std::vector<std::string>{"n1.test"});
  EXPECT_EQ(observer_.fetches["origin unsatisfying"], 1);
}

TEST_F(KeySourcesTest, WithoutASatisfyingAnswerTheBestIsReturned) {
  direct_.answer_ = Keys('a', kUntil - 1000);
  n1_.answer_ = Keys('a', kUntil - 10);
  n2_.answer_ = absl::UnavailableError("n2 down");
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test", {"ed25519:a"}, kUntil}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->satisfies);
  EXPECT_EQ(r->keys.valid_until_ts, kUntil - 10);
  EXPECT_EQ(r->sources, std::vector<std::string>{"n1.test"});
}

TEST_F(KeySourcesTest, MissingKeyIdIsNotSatisfying) {
  direct_.answer_ = Keys('a', kUntil, "ed25519:a");
  n1_.answer_ = Keys('b', kUntil, "ed25519:b");
  n2_.answer_ = absl::UnavailableError("n2 down");
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test", {"ed25519:b"}}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->satisfies);
  EXPECT_EQ(r->sources, std::vector<std::string>{"n1.test"});
}

TEST_F(KeySourcesTest, NothingAnswersListsEverySource) {
  direct_.answer_ = absl::UnavailableError("origin down");
  n1_.answer_ = absl::UnavailableError("n1 down");
  n2_.answer_ = absl::PermissionDeniedError("n2 certificate expired");
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test"}, Soon());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  for (const char* part : {"origin down", "n1 down", "n2 certificate expired", "origin.test"}) {
    EXPECT_TRUE(absl::StrContains(r.status().message(), part)) << r.status();
  }
}

TEST_F(KeySourcesTest, NoSuchServerAnywhereIsNotFound) {
  direct_.answer_ = absl::NotFoundError("no address for origin.test");
  n1_.answer_ = absl::NotFoundError("n1 knows no origin.test");
  n2_.answer_ = absl::NotFoundError("n2 knows no origin.test");
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test"}, Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
}

TEST_F(KeySourcesTest, FirstSatisfyingNotaryWinsWithoutWaitingForSlowOnes) {
  direct_.answer_ = absl::UnavailableError("origin down");
  n1_.answer_ = Keys('a');
  n1_.hold_ = true;  // never answers until released
  n2_.answer_ = Keys('a');
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test"}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sources, std::vector<std::string>{"n2.test"});
  n1_.release_.Notify();  // the destructor waits for the held call
}

TEST_F(KeySourcesTest, QuorumNeedsAgreeingSources) {
  direct_.answer_ = Keys('a');
  n1_.answer_ = Keys('a');
  n2_.answer_ = absl::UnavailableError("n2 down");
  auto s = Make({KeySources::Order::kDirectFirst, 2});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test"}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> sources = r->sources;
  std::sort(sources.begin(), sources.end());
  EXPECT_EQ(sources, (std::vector<std::string>{"n1.test", "origin"}));
  EXPECT_EQ(observer_.disagreements, 0);
}

TEST_F(KeySourcesTest, QuorumDisagreementSaysWhoReportedWhat) {
  direct_.answer_ = Keys('a');
  n1_.answer_ = Keys('x');  // a different key under the same id
  n2_.answer_ = absl::UnavailableError("n2 down");
  auto s = Make({KeySources::Order::kDirectFirst, 2});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test"}, Soon());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "origin report ed25519:a="));
  EXPECT_TRUE(absl::StrContains(r.status().message(), "n1.test report ed25519:a="));
  EXPECT_EQ(observer_.disagreements, 1);
}

TEST_F(KeySourcesTest, QuorumNotReachedIsUnavailable) {
  direct_.answer_ = Keys('a');
  n1_.answer_ = absl::UnavailableError("n1 down");
  n2_.answer_ = absl::UnavailableError("n2 down");
  auto s = Make({KeySources::Order::kDirectFirst, 2});
  absl::StatusOr<FetchResult> r = s->Fetch({"origin.test"}, Soon());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "only 1 of the 2")) << r.status();
}

TEST_F(KeySourcesTest, CreateRefusesImpossibleConfigurations) {
  std::vector<KeyFetcher*> none;
  EXPECT_FALSE(KeySources::Create(nullptr, none, {}, clock_, observer_).ok());
  EXPECT_FALSE(KeySources::Create(&direct_, none, {KeySources::Order::kDirectFirst, 2},
                                  clock_, observer_).ok());
  EXPECT_FALSE(KeySources::Create(&direct_, {&n1_}, {KeySources::Order::kDirectOnly, 2},
                                  clock_, observer_).ok());
  EXPECT_FALSE(KeySources::Create(&direct_, {&n1_}, {KeySources::Order::kDirectFirst, 0},
                                  clock_, observer_).ok());
}

}  // namespace
}  // namespace keyverifier::fetch
