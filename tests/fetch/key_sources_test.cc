// KeySources: order, fallback, concurrency, batching and quorum, over
// scripted fetchers (they answer inline, or hold their answers until
// released; the blocking helper waits for the callback).
#include "service/fetch/key_sources.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/testing/key_fixtures.h"
#include "tests/testing/server_name.h"

namespace keyverifier::fetch {
namespace {

using ::keyverifier::testing::Name;

using testing::ScriptedFetcher;

constexpr int64_t kUntil = 1800000000000;

core::ServerKeys Keys(char tag, int64_t until = kUntil, const std::string& id = "ed25519:a",
                      const std::string& server = "origin.test") {
  return *core::ParseServerKeys(testing::KeyResponseJson({server, {{id, tag}}, until}));
}

// A scripted fetcher that records every FetchMany (the servers asked, in
// order) before answering it the default way (one scripted Fetch each).
class RecordingFetcher : public ScriptedFetcher {
 public:
  using ScriptedFetcher::ScriptedFetcher;
  void FetchMany(std::vector<KeyQuery> requests, absl::Time deadline,
                 async::Callback<KeysByServer> done) override {
    {
      absl::MutexLock lock(&mu_);
      std::vector<std::string> names;
      for (const KeyQuery& r : requests) names.push_back(r.server_name.str());
      std::sort(names.begin(), names.end());
      batches_.push_back(std::move(names));
    }
    KeyFetcher::FetchMany(std::move(requests), deadline, std::move(done));
  }
  // The server lists of every FetchMany, each sorted.
  std::vector<std::vector<std::string>> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::vector<std::string>> batches_ ABSL_GUARDED_BY(mu_);
};

using Names = std::vector<std::string>;

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
  RecordingFetcher direct_{"origin"};
  RecordingFetcher n1_{"n1.test"};
  RecordingFetcher n2_{"n2.test"};
};

TEST_F(KeySourcesTest, DirectFirstUsesTheOriginWhenItAnswers) {
  direct_.answer_ = Keys('a');
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test")}, Soon());
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
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test")}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->sources, std::vector<std::string>{"n2.test"});
  EXPECT_TRUE(absl::StrContains(absl::StrJoin(r->failures, "|"), "origin down"));
}

TEST_F(KeySourcesTest, NotariesFirstAsksNoOriginWhenANotaryAnswers) {
  n1_.answer_ = Keys('a');
  n2_.answer_ = Keys('a');
  auto s = Make({KeySources::Order::kNotariesFirst, 1});
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test")}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(direct_.calls(), 0);
}

TEST_F(KeySourcesTest, DirectOnlyNeverAsksNotaries) {
  direct_.answer_ = absl::UnavailableError("origin down");
  n1_.answer_ = Keys('a');
  auto s = Make({KeySources::Order::kDirectOnly, 1});
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test")}, Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(n1_.calls(), 0);
}

TEST_F(KeySourcesTest, AnAnswerNotValidLongEnoughPassesToTheNextSource) {
  direct_.answer_ = Keys('a', kUntil - 1000);
  n1_.answer_ = Keys('a', kUntil);
  n2_.answer_ = absl::UnavailableError("n2 down");
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test"), {}, kUntil}, Soon());
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
  absl::StatusOr<FetchResult> r =
      s->FetchAndWait({Name("origin.test"), {"ed25519:a"}, kUntil}, Soon());
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
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test"), {"ed25519:b"}}, Soon());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->satisfies);
  EXPECT_EQ(r->sources, std::vector<std::string>{"n1.test"});
}

TEST_F(KeySourcesTest, NothingAnswersListsEverySource) {
  direct_.answer_ = absl::UnavailableError("origin down");
  n1_.answer_ = absl::UnavailableError("n1 down");
  n2_.answer_ = absl::PermissionDeniedError("n2 certificate expired");
  auto s = Make({});
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test")}, Soon());
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
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test")}, Soon());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
}

TEST_F(KeySourcesTest, FirstSatisfyingNotaryWinsWithoutWaitingForSlowOnes) {
  direct_.answer_ = absl::UnavailableError("origin down");
  n1_.answer_ = Keys('a');
  n1_.hold_ = true;  // never answers until released
  n2_.answer_ = Keys('a');
  auto s = Make({});
  std::optional<absl::StatusOr<FetchResult>> r;
  int answers = 0;
  s->Fetch({Name("origin.test")}, Soon(), [&](absl::StatusOr<FetchResult> got) {
    ++answers;
    r.emplace(std::move(got));
  });
  // Answered while n1 still holds its call.
  EXPECT_EQ(n1_.held(), 1);
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->ok()) << r->status();
  EXPECT_EQ((*r)->sources, std::vector<std::string>{"n2.test"});
  // n1's late answer is dropped: no second callback.
  n1_.Release();
  EXPECT_EQ(answers, 1);
  EXPECT_EQ((*r)->sources, std::vector<std::string>{"n2.test"});
}

// The late answer of a source whose stage already ended is counted (the
// observer sees every fetch's outcome) and dropped (no second callback, the
// result unchanged), as key_sources.h documents.
TEST_F(KeySourcesTest, LateAnswersAreCountedAndDropped) {
  direct_.answer_ = absl::UnavailableError("origin down");
  n1_.answer_ = Keys('a');
  n1_.hold_ = true;
  n2_.answer_ = Keys('a');
  auto s = Make({});
  int answers = 0;
  s->Fetch({Name("origin.test")}, Soon(), [&](absl::StatusOr<FetchResult> r) {
    ++answers;
    EXPECT_TRUE(r.ok()) << r.status();
  });
  ASSERT_EQ(answers, 1);
  EXPECT_EQ(observer_.fetches["notary ok"], 1);  // n2
  n1_.Release();
  EXPECT_EQ(answers, 1);
  EXPECT_EQ(observer_.fetches["notary ok"], 2);  // n1's late answer, counted
}

TEST_F(KeySourcesTest, QuorumNeedsAgreeingSources) {
  direct_.answer_ = Keys('a');
  n1_.answer_ = Keys('a');
  n2_.answer_ = absl::UnavailableError("n2 down");
  auto s = Make({KeySources::Order::kDirectFirst, 2});
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test")}, Soon());
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
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test")}, Soon());
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
  absl::StatusOr<FetchResult> r = s->FetchAndWait({Name("origin.test")}, Soon());
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

// FetchMany: results through the callback, waited for.
KeySources::ResultsByServer FetchManyAndWait(KeySources& s, std::vector<KeyQuery> requests,
                                             absl::Time deadline) {
  absl::StatusOr<KeySources::ResultsByServer> r = async::Wait<KeySources::ResultsByServer>(
      [&](auto cb) { s.FetchMany(std::move(requests), deadline, std::move(cb)); });
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : KeySources::ResultsByServer();
}

core::ServerKeys KeysOf(const std::string& server, char tag = 'a') {
  return Keys(tag, kUntil, "ed25519:a", server);
}

TEST_F(KeySourcesTest, FetchManyAsksEachNotaryOnceAndTheOriginForTheRest) {
  n1_.answer_ = absl::UnavailableError("n1 down");
  n1_.SetFor("a.test", KeysOf("a.test"));
  n1_.SetFor("b.test", KeysOf("b.test"));
  n2_.answer_ = absl::UnavailableError("n2 down");
  n2_.SetFor("a.test", KeysOf("a.test"));
  direct_.answer_ = absl::UnavailableError("origin down");
  direct_.SetFor("c.test", KeysOf("c.test"));
  auto s = Make({KeySources::Order::kNotariesFirst, 1});
  KeySources::ResultsByServer r =
      FetchManyAndWait(*s, {{Name("a.test")}, {Name("b.test")}, {Name("c.test")}, {Name("d.test")}},
                       Soon());

  // One request per notary naming every server; the origin asked once, for
  // what the notaries left open.
  const Names all = {"a.test", "b.test", "c.test", "d.test"};
  EXPECT_EQ(n1_.batches(), std::vector<Names>{all});
  EXPECT_EQ(n2_.batches(), std::vector<Names>{all});
  EXPECT_EQ(direct_.batches(), (std::vector<Names>{{"c.test", "d.test"}}));
  EXPECT_EQ(direct_.calls(), 2);

  ASSERT_EQ(r.size(), 4u);
  ASSERT_TRUE(r.at(Name("a.test")).ok()) << r.at(Name("a.test")).status();
  EXPECT_TRUE(r.at(Name("a.test"))->satisfies);
  ASSERT_EQ(r.at(Name("a.test"))->sources.size(), 1u);
  EXPECT_NE(r.at(Name("a.test"))->sources[0], "origin");
  ASSERT_TRUE(r.at(Name("b.test")).ok()) << r.at(Name("b.test")).status();
  EXPECT_EQ(r.at(Name("b.test"))->sources, std::vector<std::string>{"n1.test"});
  EXPECT_EQ(r.at(Name("b.test"))->keys.server_name, "b.test");
  ASSERT_TRUE(r.at(Name("c.test")).ok()) << r.at(Name("c.test")).status();
  EXPECT_EQ(r.at(Name("c.test"))->sources, std::vector<std::string>{"origin"});
  EXPECT_EQ(r.at(Name("c.test"))->keys.server_name, "c.test");
  const std::string c_failures = absl::StrJoin(r.at(Name("c.test"))->failures, "|");
  EXPECT_TRUE(absl::StrContains(c_failures, "n1 down")) << c_failures;
  EXPECT_TRUE(absl::StrContains(c_failures, "n2 down")) << c_failures;
  ASSERT_EQ(r.at(Name("d.test")).status().code(), absl::StatusCode::kUnavailable);
  for (const char* part : {"d.test", "n1 down", "n2 down", "origin down"}) {
    EXPECT_TRUE(absl::StrContains(r.at(Name("d.test")).status().message(), part))
        << r.at(Name("d.test")).status();
  }
}

TEST_F(KeySourcesTest, FetchManyDirectFirstAsksNotariesOnlyForWhatTheOriginMissed) {
  direct_.answer_ = absl::UnavailableError("origin down");
  direct_.SetFor("a.test", KeysOf("a.test"));
  direct_.SetFor("b.test", KeysOf("b.test"));
  n1_.answer_ = KeysOf("c.test");
  n2_.answer_ = absl::UnavailableError("n2 down");
  auto s = Make({});
  KeySources::ResultsByServer r =
      FetchManyAndWait(*s, {{Name("a.test")}, {Name("b.test")}, {Name("c.test")}}, Soon());
  EXPECT_EQ(direct_.batches(), (std::vector<Names>{{"a.test", "b.test", "c.test"}}));
  // A single open server is asked with Fetch.
  EXPECT_TRUE(n1_.batches().empty());
  EXPECT_EQ(n1_.calls(), 1);
  EXPECT_EQ(n1_.last_request().server_name.str(), "c.test");
  EXPECT_EQ(n2_.calls(), 1);
  ASSERT_EQ(r.size(), 3u);
  for (const char* server : {"a.test", "b.test"}) {
    ASSERT_TRUE(r.at(Name(server)).ok()) << r.at(Name(server)).status();
    EXPECT_EQ(r.at(Name(server))->sources, std::vector<std::string>{"origin"});
  }
  ASSERT_TRUE(r.at(Name("c.test")).ok()) << r.at(Name("c.test")).status();
  EXPECT_EQ(r.at(Name("c.test"))->sources, std::vector<std::string>{"n1.test"});
}

TEST_F(KeySourcesTest, FetchManyMergesRequestsForTheSameServer) {
  direct_.answer_ = Keys('a');
  auto s = Make({});
  KeySources::ResultsByServer r = FetchManyAndWait(
      *s, {{Name("origin.test"), {"ed25519:a"}}, {Name("origin.test"), {"ed25519:b"}, kUntil}},
      Soon());
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(direct_.calls(), 1);
  EXPECT_EQ(direct_.last_request().key_ids, (Names{"ed25519:a", "ed25519:b"}));
  EXPECT_EQ(direct_.last_request().minimum_valid_until_ts, kUntil);
  ASSERT_TRUE(r.at(Name("origin.test")).ok()) << r.at(Name("origin.test")).status();
  EXPECT_FALSE(r.at(Name("origin.test"))->satisfies);  // no ed25519:b anywhere
}

TEST_F(KeySourcesTest, QuorumWorksWithFetchMany) {
  direct_.SetFor("a.test", KeysOf("a.test"));
  direct_.SetFor("b.test", KeysOf("b.test"));
  n1_.SetFor("a.test", KeysOf("a.test"));
  n1_.SetFor("b.test", KeysOf("b.test", 'x'));  // another key under the same id
  n2_.answer_ = absl::UnavailableError("n2 down");
  auto s = Make({KeySources::Order::kDirectFirst, 2});
  KeySources::ResultsByServer r =
      FetchManyAndWait(*s, {{Name("a.test")}, {Name("b.test")}}, Soon());
  ASSERT_EQ(r.size(), 2u);
  ASSERT_TRUE(r.at(Name("a.test")).ok()) << r.at(Name("a.test")).status();
  Names sources = r.at(Name("a.test"))->sources;
  std::sort(sources.begin(), sources.end());
  EXPECT_EQ(sources, (Names{"n1.test", "origin"}));
  EXPECT_EQ(r.at(Name("a.test"))->keys.server_name, "a.test");
  EXPECT_EQ(r.at(Name("b.test")).status().code(), absl::StatusCode::kAborted)
      << r.at(Name("b.test")).status();
  EXPECT_TRUE(absl::StrContains(r.at(Name("b.test")).status().message(), "b.test"));
  EXPECT_EQ(observer_.disagreements, 1);
  // Every source asked for every server.
  EXPECT_EQ(direct_.calls(), 2);
  EXPECT_EQ(n1_.calls(), 2);
  EXPECT_EQ(n2_.calls(), 2);
}

TEST_F(KeySourcesTest, AHeldNotaryDoesNotDelayABatchAnotherNotarySettles) {
  n1_.answer_ = absl::UnavailableError("n1 late");
  n1_.hold_ = true;  // never answers until released
  n2_.answer_ = absl::UnavailableError("n2 down");
  for (const char* server : {"a.test", "b.test", "c.test"}) n2_.SetFor(server, KeysOf(server));
  auto s = Make({KeySources::Order::kNotariesFirst, 1});
  int answers = 0;
  std::optional<absl::StatusOr<KeySources::ResultsByServer>> r;
  s->FetchMany({{Name("a.test")}, {Name("b.test")}, {Name("c.test")}}, Soon(),
               [&](absl::StatusOr<KeySources::ResultsByServer> got) {
                 ++answers;
                 r.emplace(std::move(got));
               });
  // The stage ended with n1's calls still held.
  EXPECT_EQ(n1_.held(), 3);
  ASSERT_EQ(answers, 1);
  ASSERT_TRUE(r->ok()) << r->status();
  ASSERT_EQ((*r)->size(), 3u);
  for (const char* server : {"a.test", "b.test", "c.test"}) {
    ASSERT_TRUE((*r)->at(Name(server)).ok()) << (*r)->at(Name(server)).status();
    EXPECT_EQ((*r)->at(Name(server))->sources, std::vector<std::string>{"n2.test"});
  }
  EXPECT_EQ(direct_.calls(), 0);
  n1_.Release();  // late: dropped
  EXPECT_EQ(answers, 1);
  EXPECT_EQ(direct_.calls(), 0);
}

TEST_F(KeySourcesTest, AHeldNotaryIsAwaitedWhileServersAreOpen) {
  n1_.answer_ = absl::UnavailableError("n1 down");
  n1_.SetFor("b.test", KeysOf("b.test"));
  n1_.hold_ = true;
  n2_.answer_ = absl::UnavailableError("n2 down");
  n2_.SetFor("a.test", KeysOf("a.test"));
  auto s = Make({KeySources::Order::kNotariesFirst, 1});
  int answers = 0;
  std::optional<absl::StatusOr<KeySources::ResultsByServer>> r;
  s->FetchMany({{Name("a.test")}, {Name("b.test")}}, Soon(),
               [&](absl::StatusOr<KeySources::ResultsByServer> got) {
                 ++answers;
                 r.emplace(std::move(got));
               });
  // b.test is still open: the stage waits for n1, the origin is not asked yet.
  EXPECT_EQ(answers, 0);
  EXPECT_EQ(direct_.calls(), 0);
  n1_.Release();
  ASSERT_EQ(answers, 1);
  ASSERT_TRUE(r->ok()) << r->status();
  ASSERT_TRUE((*r)->at(Name("a.test")).ok()) << (*r)->at(Name("a.test")).status();
  EXPECT_EQ((*r)->at(Name("a.test"))->sources, std::vector<std::string>{"n2.test"});
  ASSERT_TRUE((*r)->at(Name("b.test")).ok()) << (*r)->at(Name("b.test")).status();
  EXPECT_EQ((*r)->at(Name("b.test"))->sources, std::vector<std::string>{"n1.test"});
  EXPECT_EQ(direct_.calls(), 0);
}

}  // namespace
}  // namespace keyverifier::fetch
