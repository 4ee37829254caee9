// FetchingKeyRing while its store is down: cached servers are unaffected,
// fetched answers are served from memory and written once the store is
// back, and the backoff of failing servers is kept. The store is the memory
// store behind a switch that makes every call fail as an unreachable
// database does (UnavailableError).
#include <optional>

#include "gtest/gtest.h"
#include "service/core/server_keys.h"
#include "service/fetch/key_sources.h"
#include "service/keyring/fetching_keyring.h"
#include "service/store/memory_key_store.h"
#include "tests/fakes/fake_async.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/testing/key_fixtures.h"
#include "tests/testing/server_name.h"

namespace keyverifier::keyring {
namespace {

constexpr int64_t kNowMs = 1700000000000;
constexpr int64_t kDay = 24 * 3600 * 1000;

class SwitchedStore : public store::KeyStore {
 public:
  explicit SwitchedStore(std::unique_ptr<store::KeyStore> inner) : inner_(std::move(inner)) {}
  bool down = false;
  int calls_while_down = 0;

  absl::StatusOr<store::WriteResult> StoreResponse(const core::ServerKeys& r,
                                                   absl::string_view source,
                                                   int64_t fetched_ts) override {
    if (absl::Status s = Check(); !s.ok()) return s;
    return inner_->StoreResponse(r, source, fetched_ts);
  }
  absl::StatusOr<std::vector<store::StoredKey>> GetKeys(absl::string_view server) override {
    if (absl::Status s = Check(); !s.ok()) return s;
    return inner_->GetKeys(server);
  }
  absl::StatusOr<std::vector<store::StoredResponse>> GetResponses(
      absl::string_view server) override {
    if (absl::Status s = Check(); !s.ok()) return s;
    return inner_->GetResponses(server);
  }
  absl::StatusOr<std::vector<store::ServerSummary>> ListServers(int64_t before) override {
    if (absl::Status s = Check(); !s.ok()) return s;
    return inner_->ListServers(before);
  }
  absl::StatusOr<int> SchemaVersion() override { return inner_->SchemaVersion(); }

 private:
  absl::Status Check() {
    if (!down) return absl::OkStatus();
    ++calls_while_down;
    return absl::UnavailableError("postgres keys at db:5432: connection refused");
  }
  std::unique_ptr<store::KeyStore> inner_;
};

core::ServerKeys Keys(const std::string& server, char tag, int64_t until) {
  return *core::ParseServerKeys(testing::KeyResponseJson({server, {{"ed25519:a", tag}}, until}));
}

class StoreOutageTest : public ::testing::Test {
 protected:
  StoreOutageTest() : store_(*store::MemoryKeyStore::Create()) {
    fetch::KeySources::Options direct_only;
    direct_only.order = fetch::KeySources::Order::kDirectOnly;
    sources_ = *fetch::KeySources::Create(&origin_, {}, direct_only, clock_,
                                          observe::NoopObserver());
    FetchingKeyRing::Options o;
    o.write_retry = absl::Seconds(5);
    o.max_unstored = 3;
    o.failure_backoff_initial = absl::Minutes(1);
    ring_ = std::make_unique<FetchingKeyRing>(store_, sources_.get(), executor_, scheduler_,
                                              clock_, observe::NoopObserver(), o);
  }
  absl::StatusOr<KeyResult> Get(const std::string& server) {
    return ring_->GetKeysAndWait(KeyQuery(testing::Name(server)), absl::InfiniteFuture());
  }
  void Pass(absl::Duration d) {
    clock_.Advance(d);
    scheduler_.RunUntil(clock_.Now());
  }
  size_t StoredResponses(const std::string& server) {
    const bool was = store_.down;
    store_.down = false;
    size_t n = store_.GetResponses(server)->size();
    store_.down = was;
    return n;
  }

  testing::FakeClock clock_{absl::FromUnixMillis(kNowMs)};
  testing::InlineExecutor executor_;
  testing::ManualScheduler scheduler_;
  testing::ScriptedFetcher origin_{"origin"};
  SwitchedStore store_;
  std::unique_ptr<fetch::KeySources> sources_;
  std::unique_ptr<FetchingKeyRing> ring_;
};

TEST_F(StoreOutageTest, CachedServersAreAnsweredWithoutTheStore) {
  origin_.answer_ = Keys("a.test", 'a', kNowMs + kDay);
  ASSERT_TRUE(Get("a.test").ok());
  store_.down = true;
  absl::StatusOr<KeyResult> r = Get("a.test");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verify_keys[0].public_key, testing::TestKey('a').public_key());
  EXPECT_EQ(store_.calls_while_down, 0);
  EXPECT_EQ(origin_.calls(), 1);
}

TEST_F(StoreOutageTest, FetchedAnswersAreServedFromMemoryAndWrittenWhenTheStoreIsBack) {
  store_.down = true;
  origin_.SetFor("b.test", Keys("b.test", 'b', kNowMs + kDay));
  absl::StatusOr<KeyResult> first = Get("b.test");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->source.kind, KeySource::Kind::kOrigin);
  EXPECT_EQ(ring_->UnstoredCount(), 1u);
  // Served from memory: no second fetch, although the store still fails.
  absl::StatusOr<KeyResult> second = Get("b.test");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->source.kind, KeySource::Kind::kCache);
  EXPECT_EQ(origin_.calls(), 1);
  // The retry finds the store still down, and keeps the answer.
  Pass(absl::Seconds(5));
  EXPECT_EQ(ring_->UnstoredCount(), 1u);
  EXPECT_EQ(StoredResponses("b.test"), 0u);
  // Back: the next retry writes it, with the time it was fetched.
  store_.down = false;
  Pass(absl::Seconds(5));
  EXPECT_EQ(ring_->UnstoredCount(), 0u);
  absl::StatusOr<std::vector<store::StoredResponse>> stored = store_.GetResponses("b.test");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].fetched_ts, kNowMs);
  EXPECT_EQ(origin_.calls(), 1);
}

TEST_F(StoreOutageTest, TheQueueIsBoundedAndNothingIsWrittenTwice) {
  store_.down = true;
  for (const char* s : {"c1.test", "c2.test", "c3.test", "c4.test"}) {
    origin_.SetFor(s, Keys(s, 'c', kNowMs + kDay));
    ASSERT_TRUE(Get(s).ok());
  }
  // The oldest answer left the queue (memory still has it).
  EXPECT_EQ(ring_->UnstoredCount(), 3u);
  EXPECT_TRUE(Get("c1.test").ok());
  EXPECT_EQ(origin_.calls(), 4);
  store_.down = false;
  Pass(absl::Seconds(5));
  EXPECT_EQ(ring_->UnstoredCount(), 0u);
  EXPECT_EQ(StoredResponses("c1.test"), 0u);
  for (const char* s : {"c2.test", "c3.test", "c4.test"}) EXPECT_EQ(StoredResponses(s), 1u) << s;
  Pass(absl::Seconds(30));  // nothing is armed any more
  EXPECT_EQ(ring_->UnstoredCount(), 0u);
}

TEST_F(StoreOutageTest, TheBackoffOfAFailingServerHoldsThroughAnOutage) {
  origin_.SetFor("dead.test", absl::UnavailableError("connection timed out"));
  EXPECT_FALSE(Get("dead.test").ok());
  EXPECT_EQ(origin_.calls(), 1);
  store_.down = true;
  Pass(absl::Seconds(30));  // within the minute of backoff
  absl::StatusOr<KeyResult> r = Get("dead.test");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(origin_.calls(), 1) << r.status();
}

}  // namespace
}  // namespace keyverifier::keyring
