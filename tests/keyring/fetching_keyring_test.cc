// FetchingKeyRing over a memory store and scripted sources.
#include "service/keyring/fetching_keyring.h"

#include <atomic>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/keyring/trusted_keys.h"
#include "service/store/memory_key_store.h"
#include "tests/fakes/fake_async.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/testing/key_fixtures.h"
#include "tests/testing/server_name.h"

namespace keyverifier::keyring {
namespace {

using ::keyverifier::testing::Name;

using testing::OldKey;
using testing::ScriptedFetcher;

constexpr int64_t kNowMs = 1700000000000;
constexpr int64_t kDay = 24 * 3600 * 1000;

core::ServerKeys Keys(std::vector<std::pair<std::string, char>> keys, int64_t until,
                      std::vector<OldKey> old = {}) {
  return *core::ParseServerKeys(
      testing::KeyResponseJson({"origin.test", std::move(keys), until, std::move(old)}));
}

class VanishObserver : public observe::Observer {
 public:
  void OnKeyVanished(absl::string_view server, absl::string_view key_id) override {
    absl::MutexLock lock(&mu_);
    vanished.push_back(absl::StrCat(server, " ", key_id));
  }
  void OnKeyConflict(absl::string_view server, absl::string_view key_id,
                     absl::string_view outcome) override {
    absl::MutexLock lock(&mu_);
    conflicts.push_back(absl::StrCat(server, " ", key_id, " ", outcome));
  }
  void OnKeyLookup(bool hit) override {
    absl::MutexLock lock(&mu_);
    ++(hit ? hits : misses);
  }
  absl::Mutex mu_;
  std::vector<std::string> vanished;
  std::vector<std::string> conflicts;
  int hits = 0, misses = 0;
};

class FetchingKeyRingTest : public ::testing::Test {
 protected:
  FetchingKeyRingTest() {
    store_ = *store::MemoryKeyStore::Create();
    sources_ = *fetch::KeySources::Create(&origin_, {&notary_}, {}, clock_, observer_);
    ring_ = std::make_unique<FetchingKeyRing>(*store_, sources_.get(), executor_, scheduler_,
                                              clock_, observer_, Options());
  }
  static FetchingKeyRing::Options Options() {
    FetchingKeyRing::Options o;
    o.failure_backoff_initial = absl::Seconds(30);
    o.miss_backoff_initial = absl::Minutes(1);
    return o;
  }
  static KeyQuery Query(std::vector<std::string> ids, int64_t minimum = 0,
                        const std::string& server = "origin.test") {
    KeyQuery q(Name(server));
    q.key_ids = std::move(ids);
    q.minimum_valid_until_ts = minimum;
    return q;
  }
  // Starts a lookup; the result lands in *out when it is answered.
  void Start(const KeyQuery& q, std::optional<absl::StatusOr<KeyResult>>* out,
             absl::Time deadline = absl::InfiniteFuture()) {
    ring_->GetKeys(q, deadline, [out](absl::StatusOr<KeyResult> r) { out->emplace(std::move(r)); });
  }
  absl::StatusOr<KeyResult> Get(std::vector<std::string> ids = {}, int64_t minimum = 0,
                                const std::string& server = "origin.test") {
    KeyQuery q(Name(server));
    q.key_ids = std::move(ids);
    q.minimum_valid_until_ts = minimum;
    return ring_->GetKeysAndWait(q, absl::InfiniteFuture());
  }

  testing::FakeClock clock_{absl::FromUnixMillis(kNowMs)};
  testing::InlineExecutor executor_;
  testing::ManualScheduler scheduler_;
  VanishObserver observer_;
  ScriptedFetcher origin_{"origin"};
  ScriptedFetcher notary_{"notary.test"};
  std::unique_ptr<store::KeyStore> store_;
  std::unique_ptr<fetch::KeySources> sources_;
  std::unique_ptr<FetchingKeyRing> ring_;
};

TEST_F(FetchingKeyRingTest, ColdServerIsFetchedStoredAndThenCached) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  absl::StatusOr<KeyResult> r = Get({"ed25519:a"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->source.kind, KeySource::Kind::kOrigin);
  ASSERT_EQ(r->verify_keys.size(), 1u);
  EXPECT_EQ(r->responses.size(), 1u);
  r = Get({"ed25519:a"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->source.kind, KeySource::Kind::kCache);
  EXPECT_EQ(origin_.calls(), 1);
  EXPECT_EQ(observer_.hits, 1);
  EXPECT_EQ(observer_.misses, 1);
  ASSERT_EQ(store_->GetKeys("origin.test")->size(), 1u);
}

// A key is usable for 7 days after the last response that listed it,
// whatever its valid_until_ts says: the answer carries that confirmation,
// and once it lapses a lookup that needs the key now fetches again.
TEST_F(FetchingKeyRingTest, KeysAreTrustedSevenDaysFromTheLastConfirmingFetch) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + 30 * kDay);
  absl::StatusOr<KeyResult> r = Get({"ed25519:a"}, kNowMs);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->verify_keys.size(), 1u);
  EXPECT_EQ(r->verify_keys[0].valid_until_ts, kNowMs + 30 * kDay);
  EXPECT_EQ(r->verify_keys[0].confirmed_ts, kNowMs);
  EXPECT_EQ(core::UsableUntil(r->verify_keys[0]), kNowMs + 7 * kDay);
  // Six days on: still answered from the cache for a need of now.
  clock_.Advance(absl::Hours(24 * 6));
  r = Get({"ed25519:a"}, absl::ToUnixMillis(clock_.Now()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->source.kind, KeySource::Kind::kCache);
  EXPECT_EQ(origin_.calls(), 1);
  // Past 7 days: the published validity has a long way to go, but the key
  // must be confirmed again; the new response restarts the 7 days.
  clock_.Advance(absl::Hours(24 * 2));
  const int64_t now = absl::ToUnixMillis(clock_.Now());
  r = Get({"ed25519:a"}, now);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(origin_.calls(), 2);
  EXPECT_EQ(r->verify_keys[0].confirmed_ts, now);
  EXPECT_EQ(core::UsableUntil(r->verify_keys[0]), now + 7 * kDay);
}

// A need beyond what any answer can be trusted for (7 days from its fetch)
// is a miss of its own: asked again only after the backoff.
TEST_F(FetchingKeyRingTest, ANeedBeyondSevenDaysIsBackedOff) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + 30 * kDay);
  const int64_t in_ten_days = kNowMs + 10 * kDay;
  ASSERT_TRUE(Get({"ed25519:a"}, in_ten_days).ok());
  ASSERT_TRUE(Get({"ed25519:a"}, in_ten_days).ok());
  EXPECT_EQ(origin_.calls(), 1);
}

// MSC4499 through the keyring: a key only a notary gave is replaced by the
// origin's own, and a later response disagreeing with the origin's binding
// is refused; both are reported as conflicts.
TEST_F(FetchingKeyRingTest, KeyIdBindingConflictsAreResolvedAndReported) {
  origin_.answer_ = absl::UnavailableError("origin down");
  notary_.answer_ = Keys({{"ed25519:a", 'x'}}, kNowMs + kDay);
  absl::StatusOr<KeyResult> r = Get({"ed25519:a"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->source.kind, KeySource::Kind::kNotary);
  // The origin is back and names another key: its word wins.
  origin_.answer_ = Keys({{"ed25519:a", 'a'}, {"ed25519:b", 'b'}}, kNowMs + kDay);
  r = Get({"ed25519:b"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->source.kind, KeySource::Kind::kOrigin);
  ASSERT_EQ(r->verify_keys.size(), 2u);
  EXPECT_EQ(r->verify_keys[0].key_id, "ed25519:a");
  EXPECT_EQ(r->verify_keys[0].public_key, Keys({{"ed25519:a", 'a'}}, 0).verify_keys[0].public_key);
  // Confirmed now: a response giving it another key is refused, and the
  // known keys stay as they are.
  origin_.answer_ = Keys({{"ed25519:a", 'x'}, {"ed25519:c", 'c'}}, kNowMs + kDay);
  r = Get({"ed25519:c"});
  EXPECT_FALSE(r.ok() && std::any_of(r->verify_keys.begin(), r->verify_keys.end(),
                                     [](const core::VerifyKey& k) { return k.key_id == "ed25519:c"; }));
  EXPECT_EQ(store_->GetKeys("origin.test")->size(), 2u);
  EXPECT_EQ(observer_.conflicts, (std::vector<std::string>{"origin.test ed25519:a rebound",
                                                            "origin.test ed25519:a refused"}));
}

// Memory is bounded in bytes: the least recently asked servers leave memory
// (the store keeps them, and answers them again without a fetch).
TEST_F(FetchingKeyRingTest, MemoryIsBoundedInBytes) {
  FetchingKeyRing::Options o = Options();
  o.max_bytes = 64 * 1024;
  ring_ = std::make_unique<FetchingKeyRing>(*store_, sources_.get(), executor_, scheduler_, clock_,
                                            observer_, o);
  std::vector<std::string> servers;
  for (int i = 0; i < 200; ++i) {
    const std::string s = absl::StrCat("s", i, ".test");
    servers.push_back(s);
    origin_.SetFor(s, core::ParseServerKeys(
                          testing::KeyResponseJson({s, {{"ed25519:a", 'a'}}, kNowMs + kDay})));
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(Get({"ed25519:a"}, 0, s).ok());
  }
  EXPECT_EQ(origin_.calls(), 200);
  int in_memory = 0;
  for (const std::string& s : servers) {
    in_memory += ring_->TryGetKeysFromMemory(Query({"ed25519:a"}, 0, s)).has_value();
  }
  // Each takes about 1 KiB: far fewer than 200 fit in 64 KiB, but some do.
  EXPECT_GT(in_memory, 10);
  EXPECT_LT(in_memory, 150);
  EXPECT_TRUE(ring_->TryGetKeysFromMemory(Query({"ed25519:a"}, 0, servers.back())).has_value());
  EXPECT_FALSE(ring_->TryGetKeysFromMemory(Query({"ed25519:a"}, 0, servers.front())).has_value());
  // The oldest comes back from the store, not the origin.
  absl::StatusOr<KeyResult> r = Get({"ed25519:a"}, 0, servers.front());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(origin_.calls(), 200);
}

TEST_F(FetchingKeyRingTest, ThousandConcurrentLookupsMakeOneFetch) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  origin_.hold_ = true;
  std::vector<std::optional<absl::StatusOr<KeyResult>>> results(1000);
  for (auto& r : results) Start(Query({"ed25519:a"}), &r);
  // Nobody is answered, and nobody holds a thread, while the fetch is out.
  EXPECT_EQ(ring_->WaitersFor(Name("origin.test")), 1000);
  EXPECT_EQ(origin_.held(), 1);
  origin_.Release();
  for (const auto& r : results) {
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->ok()) << r->status();
  }
  EXPECT_EQ(origin_.calls(), 1);
  EXPECT_EQ(ring_->WaitersFor(Name("origin.test")), 0);
}

// A caller waiting on another caller's lookup gets the answer to its own
// query: here the raw JSON the first caller did not want.
TEST_F(FetchingKeyRingTest, WaitersOnASharedLookupGetTheirOwnAnswer) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}, {"ed25519:n", 'n'}}, kNowMs + kDay);
  origin_.hold_ = true;
  KeyQuery first = Query({"ed25519:a"});
  first.include_raw_json = false;
  std::optional<absl::StatusOr<KeyResult>> leader, waiter;
  Start(first, &leader);
  Start(Query({"ed25519:n"}), &waiter);
  EXPECT_EQ(ring_->WaitersFor(Name("origin.test")), 2);
  origin_.Release();
  ASSERT_TRUE(leader.has_value() && leader->ok());
  ASSERT_TRUE(waiter.has_value() && waiter->ok()) << waiter->status();
  EXPECT_TRUE((*leader)->responses.empty());
  EXPECT_EQ((*waiter)->responses.size(), 1u);
  EXPECT_EQ(origin_.calls(), 1);
}

// The fetch runs under the keyring's budget: a caller whose deadline passes
// is answered DEADLINE_EXCEEDED, the fetch goes on, and what it brings
// answers the next caller without a fetch of its own.
TEST_F(FetchingKeyRingTest, ShortDeadlineGivesUpButTheFetchGoesOnAndIsCached) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  origin_.hold_ = true;
  std::optional<absl::StatusOr<KeyResult>> impatient;
  const absl::Time deadline = absl::FromUnixMillis(kNowMs) + absl::Milliseconds(50);
  Start(Query({"ed25519:a"}), &impatient, deadline);
  EXPECT_FALSE(impatient.has_value());
  scheduler_.RunUntil(deadline);
  ASSERT_TRUE(impatient.has_value());
  EXPECT_EQ(impatient->status().code(), absl::StatusCode::kDeadlineExceeded)
      << impatient->status();
  EXPECT_TRUE(absl::StrContains(impatient->status().message(), "origin.test"));
  origin_.Release();  // the fetch completes after its first caller left
  absl::StatusOr<KeyResult> later = Get({"ed25519:a"});
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(later->source.kind, KeySource::Kind::kCache);
  EXPECT_EQ(origin_.calls(), 1);
  // A short deadline is not a failure of the server: nothing backs off.
  clock_.Advance(absl::Minutes(2));
  origin_.answer_ = Keys({{"ed25519:a", 'a'}, {"ed25519:b", 'b'}}, kNowMs + kDay);
  ASSERT_TRUE(Get({"ed25519:b"}).ok());
  EXPECT_EQ(origin_.calls(), 2);
  EXPECT_EQ(scheduler_.pending(), 0u);  // answered callers leave no timer behind
}

// Made-up key ids cannot make us hammer the origin: inside the backoff
// window the same unknown key id is fetched once, and a burst of different
// unknown ids after an answer that lacked one fetches nothing. (A key id
// first seen after a complete answer, a rotation, is fetched at once:
// UnknownKeyIdTriggersAFetch.)
TEST_F(FetchingKeyRingTest, UnknownKeyIdsAreNegativelyCached) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  notary_.answer_ = absl::UnavailableError("notary down");
  ASSERT_TRUE(Get({"ed25519:a"}).ok());
  EXPECT_EQ(origin_.calls(), 1);
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<KeyResult> r = Get({"ed25519:nope"});
    ASSERT_TRUE(r.ok()) << r.status();  // the known keys, without the one asked
    for (const core::VerifyKey& k : r->verify_keys) EXPECT_NE(k.key_id, "ed25519:nope");
  }
  EXPECT_EQ(origin_.calls(), 2);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Get({absl::StrCat("ed25519:made_up", i)}).ok());
  EXPECT_EQ(origin_.calls(), 2);
  // Neither did the miss reset anything: the same id after its first
  // backoff is fetched once more, then backs off for longer (2 min).
  clock_.Advance(absl::Seconds(61));
  ASSERT_TRUE(Get({"ed25519:nope"}).ok());
  EXPECT_EQ(origin_.calls(), 3);
  clock_.Advance(absl::Seconds(61));
  ASSERT_TRUE(Get({"ed25519:nope"}).ok());
  EXPECT_EQ(origin_.calls(), 3);
  clock_.Advance(absl::Seconds(61));
  ASSERT_TRUE(Get({"ed25519:nope"}).ok());
  EXPECT_EQ(origin_.calls(), 4);
}

// A flood of names never seen before costs a bounded number of fetches;
// names already known are not limited.
TEST_F(FetchingKeyRingTest, NewServerNamesAreRateLimited) {
  FetchingKeyRing::Options o = Options();
  o.new_servers_per_second = 2;
  o.new_servers_burst = 3;
  FetchingKeyRing ring(*store_, sources_.get(), executor_, scheduler_, clock_, observer_, o);
  origin_.answer_ = absl::UnavailableError("no such server");
  notary_.answer_ = absl::UnavailableError("no such server");
  int throttled = 0;
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<KeyResult> r =
        ring.GetKeysAndWait(Query({}, 0, absl::StrCat("random", i, ".test")), absl::InfiniteFuture());
    ASSERT_FALSE(r.ok());
    if (r.status().code() == absl::StatusCode::kResourceExhausted) {
      ++throttled;
      EXPECT_TRUE(absl::StrContains(r.status().message(), "never seen before")) << r.status();
    }
  }
  EXPECT_EQ(throttled, 7);
  EXPECT_EQ(origin_.calls(), 3);
  // A throttled name is no failure of its own: a second later it is fetched.
  clock_.Advance(absl::Seconds(1));
  ASSERT_FALSE(ring.GetKeysAndWait(Query({}, 0, "random9.test"), absl::InfiniteFuture()).ok());
  EXPECT_EQ(origin_.calls(), 4);
  // A known server is not limited.
  ASSERT_TRUE(store_->StoreResponse(Keys({{"ed25519:a", 'a'}}, kNowMs + kDay), "origin.test",
                                    kNowMs).ok());
  EXPECT_TRUE(ring.GetKeysAndWait(Query({"ed25519:a"}), absl::InfiniteFuture()).ok());
}

TEST_F(FetchingKeyRingTest, UnreachableMinimumValidityIsNegativelyCached) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  notary_.answer_ = absl::UnavailableError("notary down");
  ASSERT_TRUE(Get({"ed25519:a"}).ok());
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<KeyResult> r = Get({"ed25519:a"}, kNowMs + 30 * kDay);
    ASSERT_TRUE(r.ok()) << r.status();  // the best there is; the verdict decides
    EXPECT_EQ(r->verify_keys[0].valid_until_ts, kNowMs + kDay);
  }
  EXPECT_EQ(origin_.calls(), 2);
}

// A batch starts every flight it needs at once: the sources are asked for
// all the servers together.
TEST_F(FetchingKeyRingTest, GetKeysManyFetchesEveryMissingServerTogether) {
  for (int i = 0; i < 5; ++i) {
    const std::string server = absl::StrCat("s", i, ".test");
    origin_.SetFor(server, *core::ParseServerKeys(testing::KeyResponseJson(
                               {server, {{"ed25519:a", 'a'}}, kNowMs + kDay})));
  }
  origin_.SetFor("s4.test", absl::UnavailableError("s4 down"));
  notary_.answer_ = absl::UnavailableError("notary down");
  origin_.hold_ = true;
  std::vector<KeyQuery> queries;
  for (int i = 0; i < 5; ++i) queries.push_back(Query({"ed25519:a"}, 0, absl::StrCat("s", i, ".test")));
  queries.push_back(Query({"ed25519:a"}, 0, "s0.test"));  // twice: one flight
  std::optional<std::vector<absl::StatusOr<KeyResult>>> results;
  ring_->GetKeysMany(queries, absl::InfiniteFuture(),
                     [&](std::vector<absl::StatusOr<KeyResult>> r) { results = std::move(r); });
  EXPECT_EQ(origin_.held(), 5);  // all five in flight at once
  EXPECT_FALSE(results.has_value());
  origin_.Release();
  ASSERT_TRUE(results.has_value());
  ASSERT_EQ(results->size(), 6u);
  for (int i : {0, 1, 2, 3, 5}) EXPECT_TRUE((*results)[i].ok()) << (*results)[i].status();
  EXPECT_FALSE((*results)[4].ok());
  EXPECT_TRUE(absl::StrContains((*results)[4].status().message(), "s4 down"));
  EXPECT_EQ(origin_.calls(), 5);
}

TEST_F(FetchingKeyRingTest, MinimumValidUntilBeyondTheCacheFetchesWithThatMinimum) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  ASSERT_TRUE(Get({"ed25519:a"}).ok());
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + 3 * kDay);
  absl::StatusOr<KeyResult> r = Get({"ed25519:a"}, kNowMs + 2 * kDay);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(origin_.calls(), 2);
  EXPECT_EQ(origin_.last_request().minimum_valid_until_ts, kNowMs + 2 * kDay);
  EXPECT_EQ(r->verify_keys[0].valid_until_ts, kNowMs + 3 * kDay);
  // Now the cache answers that minimum.
  ASSERT_TRUE(Get({"ed25519:a"}, kNowMs + 2 * kDay).ok());
  EXPECT_EQ(origin_.calls(), 2);
}

TEST_F(FetchingKeyRingTest, UnknownKeyIdTriggersAFetch) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  ASSERT_TRUE(Get({"ed25519:a"}).ok());
  origin_.answer_ = Keys({{"ed25519:b", 'b'}}, kNowMs + kDay, {{"ed25519:a", 'a', kNowMs}});
  absl::StatusOr<KeyResult> r = Get({"ed25519:b"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(origin_.calls(), 2);
  ASSERT_EQ(r->verify_keys.size(), 1u);
  EXPECT_EQ(r->verify_keys[0].key_id, "ed25519:b");
  ASSERT_EQ(r->old_verify_keys.size(), 1u);
  EXPECT_EQ(r->old_verify_keys[0].key_id, "ed25519:a");
  EXPECT_TRUE(observer_.vanished.empty());  // a moved to old_verify_keys
}

TEST_F(FetchingKeyRingTest, VanishedKeyIsReportedAndStillAnswerable) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  ASSERT_TRUE(Get({"ed25519:a"}).ok());
  origin_.answer_ = Keys({{"ed25519:b", 'b'}}, kNowMs + kDay);  // a gone without a trace
  ASSERT_TRUE(Get({"ed25519:b"}).ok());
  EXPECT_EQ(observer_.vanished, std::vector<std::string>{"origin.test ed25519:a"});
  absl::StatusOr<KeyResult> r = Get({"ed25519:a"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(origin_.calls(), 2);  // known: answered without fetching
}

TEST_F(FetchingKeyRingTest, OriginDownServesTheLastGoodKeysAndBacksOff) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  ASSERT_TRUE(Get({"ed25519:a"}).ok());
  origin_.answer_ = absl::UnavailableError("origin down");
  notary_.answer_ = absl::UnavailableError("notary down");
  absl::StatusOr<KeyResult> r = Get({"ed25519:a"}, kNowMs + 5 * kDay);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->source.kind, KeySource::Kind::kCache);
  EXPECT_EQ(r->verify_keys[0].valid_until_ts, kNowMs + kDay);
  EXPECT_EQ(origin_.calls(), 2);
  // Within the backoff no new fetch.
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(Get({"ed25519:a"}, kNowMs + 5 * kDay).ok());
  EXPECT_EQ(origin_.calls(), 2);
  clock_.Advance(absl::Seconds(21));
  ASSERT_TRUE(Get({"ed25519:a"}, kNowMs + 5 * kDay).ok());
  EXPECT_EQ(origin_.calls(), 3);
}

TEST_F(FetchingKeyRingTest, ResponseTheStoreRefusesIsNotServedAndBacksOff) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  absl::StatusOr<KeyResult> first = Get({"ed25519:a"});
  ASSERT_TRUE(first.ok()) << first.status();
  const core::VerifyKey known = first->verify_keys[0];
  // Other bytes under the same key id, and a new key: the store refuses the
  // whole response.
  origin_.answer_ = Keys({{"ed25519:a", 'b'}, {"ed25519:n", 'n'}}, kNowMs + 5 * kDay);
  notary_.answer_ = absl::UnavailableError("notary down");
  absl::StatusOr<KeyResult> r = Get({"ed25519:a"}, kNowMs + 5 * kDay);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->source.kind, KeySource::Kind::kCache);
  ASSERT_EQ(r->verify_keys.size(), 1u);
  EXPECT_EQ(r->verify_keys[0].public_key, known.public_key);
  EXPECT_EQ(r->verify_keys[0].valid_until_ts, known.valid_until_ts);
  EXPECT_EQ(origin_.calls(), 2);
  // The refused key is not served, and within the backoff not fetched again.
  r = Get({"ed25519:n"});
  ASSERT_TRUE(r.ok()) << r.status();
  for (const core::VerifyKey& k : r->verify_keys) EXPECT_NE(k.key_id, "ed25519:n");
  EXPECT_EQ(origin_.calls(), 2);
  absl::StatusOr<std::vector<store::StoredKey>> stored = store_->GetKeys("origin.test");
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].key.public_key, known.public_key);
}

TEST_F(FetchingKeyRingTest, NothingKnownAndFetchFailingIsTheFetchError) {
  origin_.answer_ = absl::UnavailableError("origin down");
  notary_.answer_ = absl::UnavailableError("notary down");
  absl::StatusOr<KeyResult> r = Get();
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "origin down")) << r.status();
  // Backing off, it says so.
  r = Get();
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "backing off")) << r.status();
}

// The refresher keeps every asked-for server fresh, but a server whose fetch
// just failed is left alone until its backoff ends: a refresh then would be
// one more connection to a dead server for nothing.
TEST_F(FetchingKeyRingTest, RefreshHonoursTheFailureBackoff) {
  origin_.answer_ = absl::UnavailableError("origin down");
  notary_.answer_ = absl::UnavailableError("notary down");
  ASSERT_EQ(Get().status().code(), absl::StatusCode::kUnavailable);
  const int origin_calls = origin_.calls();
  absl::StatusOr<int64_t> refreshed =
      ring_->RefreshAndWait(Name("origin.test"), absl::Now() + absl::Seconds(5));
  EXPECT_FALSE(refreshed.ok());
  EXPECT_TRUE(absl::StrContains(refreshed.status().message(), "backing off"))
      << refreshed.status();
  EXPECT_EQ(origin_.calls(), origin_calls);
  // Past the backoff (30 s here), the refresh asks again and learns the keys.
  clock_.Advance(absl::Seconds(31));
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  refreshed = ring_->RefreshAndWait(Name("origin.test"), absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_EQ(*refreshed, kNowMs + kDay);
  EXPECT_EQ(origin_.calls(), origin_calls + 1);
}

TEST_F(FetchingKeyRingTest, NotaryAnswerIsRecordedAsSuch) {
  origin_.answer_ = absl::UnavailableError("origin down");
  notary_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  absl::StatusOr<KeyResult> r = Get({"ed25519:a"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->source.kind, KeySource::Kind::kNotary);
  EXPECT_EQ(r->source.notary, "notary.test");
  EXPECT_EQ((*store_->GetResponses("origin.test"))[0].source, "notary.test");
}

TEST_F(FetchingKeyRingTest, KeysStoredByAnotherInstanceAreUsedWithoutFetching) {
  ASSERT_TRUE(store_->StoreResponse(Keys({{"ed25519:a", 'a'}}, kNowMs + kDay), "origin.test",
                                    kNowMs - 1000)
                  .ok());
  absl::StatusOr<KeyResult> r = Get({"ed25519:a"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->source.kind, KeySource::Kind::kCache);
  EXPECT_EQ(origin_.calls(), 0);
}

TEST_F(FetchingKeyRingTest, RefreshFetchesWhateverIsCached) {
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  ASSERT_TRUE(Get().ok());
  clock_.Advance(absl::Hours(1));
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + 2 * kDay);
  absl::StatusOr<int64_t> until =
      ring_->RefreshAndWait(Name("origin.test"), absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(until.ok()) << until.status();
  EXPECT_EQ(*until, kNowMs + 2 * kDay);
  EXPECT_EQ(origin_.calls(), 2);
  EXPECT_EQ(ring_->FreshnessOf(Name("origin.test")).fetched_ts, kNowMs + 3600 * 1000);
  std::vector<std::pair<core::ServerName, absl::Time>> tracked = ring_->TrackedServers();
  ASSERT_EQ(tracked.size(), 1u);
  EXPECT_EQ(tracked[0].first, Name("origin.test"));
}

TEST_F(FetchingKeyRingTest, MemoryAnswersOnlyWhatIsAlreadyThere) {
  KeyQuery q(Name("origin.test"));
  q.key_ids = {"ed25519:a"};
  EXPECT_FALSE(ring_->TryGetKeysFromMemory(q).has_value());
  EXPECT_EQ(origin_.calls(), 0);  // never fetches
  origin_.answer_ = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  ASSERT_TRUE(Get({"ed25519:a"}).ok());
  std::optional<KeyResult> r = ring_->TryGetKeysFromMemory(q);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->verify_keys.size(), 1u);
  q.include_raw_json = false;
  EXPECT_TRUE(ring_->TryGetKeysFromMemory(q)->responses.empty());
  q.minimum_valid_until_ts = kNowMs + 2 * kDay;  // not valid long enough
  EXPECT_FALSE(ring_->TryGetKeysFromMemory(q).has_value());
  // Pinned keys in front: they answer from memory too.
  KeysByServer pinned_keys;
  pinned_keys["pinned.test"] = {Keys({{"ed25519:p", 'p'}}, kNowMs + kDay).verify_keys[0]};
  TrustedKeyRing pinned(pinned_keys);
  FallbackKeyRing both(pinned, *ring_);
  KeyQuery p(Name("pinned.test"));
  EXPECT_TRUE(both.TryGetKeysFromMemory(p).has_value());
  q.minimum_valid_until_ts = 0;
  EXPECT_TRUE(both.TryGetKeysFromMemory(q).has_value());
  p.server_name = Name("unknown.test");
  EXPECT_FALSE(both.TryGetKeysFromMemory(p).has_value());
}

TEST_F(FetchingKeyRingTest, TlsFingerprintsComeFromTheResponsesInMemory) {
  core::ServerKeys k = Keys({{"ed25519:a", 'a'}}, kNowMs + kDay);
  const std::string digest(32, 'f');
  k.raw_json = absl::StrCat(R"({"server_name":"origin.test","tls_fingerprints":[{"sha256":")",
                            core::EncodeBase64Unpadded(digest), R"("}]})");
  ASSERT_TRUE(store_->StoreResponse(k, "origin.test", kNowMs).ok());
  EXPECT_TRUE(ring_->TlsFingerprintsOf("origin.test").empty());  // not loaded yet
  ASSERT_TRUE(Get({"ed25519:a"}).ok());
  EXPECT_EQ(ring_->TlsFingerprintsOf("origin.test"), std::vector<std::string>{digest});
  EXPECT_TRUE(ring_->TlsFingerprintsOf("other.test").empty());
}

// The fingerprint index follows memory: servers of one host on any port
// count, and a server dropped from memory leaves it.
TEST_F(FetchingKeyRingTest, TlsFingerprintIndexFollowsMemory) {
  FetchingKeyRing::Options o = Options();
  o.max_servers = 3;
  FetchingKeyRing small(*store_, nullptr, executor_, scheduler_, clock_, observer_, o);
  auto store_with_fingerprint = [&](const std::string& server, char fp) {
    core::ServerKeys k = *core::ParseServerKeys(
        testing::KeyResponseJson({server, {{"ed25519:a", 'a'}}, kNowMs + kDay}));
    k.raw_json = absl::StrCat(R"({"server_name":")", server, R"(","tls_fingerprints":[{"sha256":")",
                              core::EncodeBase64Unpadded(std::string(32, fp)), R"("}]})");
    ASSERT_TRUE(store_->StoreResponse(k, server, kNowMs).ok());
  };
  store_with_fingerprint("fp.test", '1');
  store_with_fingerprint("fp.test:8448", '2');
  for (const char* server : {"fp.test", "fp.test:8448"}) {
    ASSERT_TRUE(small.GetKeysAndWait(Query({}, 0, server), absl::InfiniteFuture()).ok());
    clock_.Advance(absl::Seconds(1));
  }
  std::vector<std::string> fps = small.TlsFingerprintsOf("fp.test");
  std::sort(fps.begin(), fps.end());
  EXPECT_EQ(fps, (std::vector<std::string>{std::string(32, '1'), std::string(32, '2')}));
  // Two more servers: the least recently asked (fp.test) leaves memory.
  for (const char* server : {"x.test", "y.test"}) {
    store_with_fingerprint(server, 'x');
    ASSERT_TRUE(small.GetKeysAndWait(Query({}, 0, server), absl::InfiniteFuture()).ok());
    clock_.Advance(absl::Seconds(1));
  }
  EXPECT_EQ(small.TlsFingerprintsOf("fp.test"), std::vector<std::string>{std::string(32, '2')});
  EXPECT_EQ(small.TlsFingerprintsOf("x.test"), std::vector<std::string>{std::string(32, 'x')});
}

TEST_F(FetchingKeyRingTest, BeyondTheCapTheLeastRecentlyAskedAreDropped) {
  FetchingKeyRing::Options o;
  o.max_servers = 100;
  FetchingKeyRing small(*store_, nullptr, executor_, scheduler_, clock_, observer_, o);
  for (int i = 0; i < 150; ++i) {
    const std::string server = absl::StrCat("s", i, ".test");
    core::ServerKeys k = *core::ParseServerKeys(
        testing::KeyResponseJson({server, {{"ed25519:a", 'a'}}, kNowMs + kDay}));
    ASSERT_TRUE(store_->StoreResponse(k, server, kNowMs).ok());
    KeyQuery q(Name(server));
    ASSERT_TRUE(small.GetKeysAndWait(q, absl::InfiniteFuture()).ok());
    clock_.Advance(absl::Seconds(1));
  }
  std::vector<std::pair<core::ServerName, absl::Time>> tracked = small.TrackedServers();
  EXPECT_LE(tracked.size(), 100u);
  EXPECT_GE(tracked.size(), 99u);
  auto has = [&](const std::string& s) {
    return std::any_of(tracked.begin(), tracked.end(),
                       [&](const auto& t) { return t.first.str() == s; });
  };
  EXPECT_TRUE(has("s149.test"));
  EXPECT_FALSE(has("s0.test"));
  // Dropped from memory, not forgotten: the store still answers.
  KeyQuery q(Name("s0.test"));
  EXPECT_TRUE(small.GetKeysAndWait(q, absl::InfiniteFuture()).ok());
}

TEST_F(FetchingKeyRingTest, StoreOnlyKeyRingSaysNothingIsKnown) {
  FetchingKeyRing store_only(*store_, nullptr, executor_, scheduler_, clock_, observer_,
                             FetchingKeyRing::Options());
  KeyQuery q(Name("origin.test"));
  absl::StatusOr<KeyResult> r = store_only.GetKeysAndWait(q, absl::InfiniteFuture());
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "no key sources")) << r.status();
}

}  // namespace
}  // namespace keyverifier::keyring
