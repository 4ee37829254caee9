// The merge rule's promise that the stored state does not depend on the
// order of writes: every permutation of a set of responses ends in the same
// keys, responses and server summaries.
#include "service/store/merge.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/store/memory_key_store.h"
#include "tests/store/test_responses.h"

namespace keyverifier::store::testing {
namespace {

struct Write {
  core::ServerKeys response;
  std::string source;
  int64_t fetched_ts;
};

struct State {
  std::vector<StoredKey> keys;
  std::vector<StoredResponse> responses;
  std::vector<ServerSummary> servers;
};

State Apply(const std::vector<Write>& writes, const std::vector<int>& order) {
  std::unique_ptr<KeyStore> store = *MemoryKeyStore::Create();
  for (int i : order) {
    const Write& w = writes[i];
    absl::StatusOr<WriteResult> r =
        store->StoreResponse(w.response, w.source, w.fetched_ts);
    EXPECT_TRUE(r.ok()) << r.status();
  }
  State s;
  s.keys = *store->GetKeys("o.example");
  s.responses = *store->GetResponses("o.example");
  s.servers = *store->ListServers();
  return s;
}

void ExpectSame(const State& a, const State& b) {
  ASSERT_EQ(a.keys.size(), b.keys.size());
  for (size_t i = 0; i < a.keys.size(); ++i) {
    EXPECT_EQ(a.keys[i].key, b.keys[i].key);
    EXPECT_EQ(a.keys[i].first_seen_ts, b.keys[i].first_seen_ts);
    EXPECT_EQ(a.keys[i].last_seen_ts, b.keys[i].last_seen_ts);
    EXPECT_EQ(a.keys[i].sources, b.keys[i].sources);
  }
  EXPECT_EQ(a.responses, b.responses);
  EXPECT_EQ(a.servers, b.servers);
}

TEST(MergeTest, StoredStateDoesNotDependOnWriteOrder) {
  const std::string o = "o.example";
  std::vector<Write> writes = {
      {SignedResponse(o, 5000, {{"ed25519:a", 'a'}}), o, 100},
      {SignedResponse(o, 9000, {{"ed25519:b", 'b'}, {"ed25519:a", 'a', 4000}}),
       o, 300},
      {SignedResponse(o, 6000, {{"ed25519:a", 'a'}, {"ed25519:b", 'b'}}),
       "n.example", 200},
      {SignedResponse(o, 9500, {{"ed25519:b", 'b'}, {"ed25519:a", 'a', 3500}}),
       "n.example", 400},
      {SignedResponse(o, 7000, {{"ed25519:c", 'c'}, {"ed25519:a", 'a', 4200}}),
       "m.example", 250},
  };
  std::vector<int> order = {0, 1, 2, 3, 4};
  State first = Apply(writes, order);
  // The expected merge, spelled out once.
  ASSERT_EQ(first.keys.size(), 3u);
  EXPECT_EQ(first.keys[0].key.expired_ts, 3500);
  EXPECT_EQ(first.keys[0].key.valid_until_ts, 6000);
  EXPECT_THAT(first.keys[0].sources,
              ::testing::ElementsAre("m.example", "n.example", o));
  EXPECT_EQ(first.keys[1].key.valid_until_ts, 9500);
  EXPECT_EQ(first.keys[2].first_seen_ts, 250);
  ASSERT_EQ(first.responses.size(), 3u);
  EXPECT_EQ(first.responses[0].fetched_ts, 400);
  EXPECT_EQ(first.servers[0].useful_until_ts, 9500);
  int permutations = 0;
  while (std::next_permutation(order.begin(), order.end())) {
    SCOPED_TRACE(::testing::PrintToString(order));
    ExpectSame(first, Apply(writes, order));
    ++permutations;
  }
  EXPECT_EQ(permutations, 119);
}

TEST(MergeTest, StoringTheSameResponseAgainChangesNothing) {
  std::unique_ptr<KeyStore> store = *MemoryKeyStore::Create();
  core::ServerKeys r = SignedResponse(
      "o.example", 10, {{"ed25519:a", 'a'}, {"ed25519:old", 'o', 5}});
  ASSERT_TRUE(store->StoreResponse(r, "n.example", 3).ok());
  State once{*store->GetKeys("o.example"), *store->GetResponses("o.example"),
             *store->ListServers()};
  absl::StatusOr<WriteResult> again = store->StoreResponse(r, "n.example", 3);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->new_keys.empty());
  EXPECT_TRUE(again->vanished_keys.empty());
  ExpectSame(once, State{*store->GetKeys("o.example"),
                         *store->GetResponses("o.example"),
                         *store->ListServers()});
}

TEST(MergeTest, PlanReportsWhatChanged) {
  StoredState before;
  absl::StatusOr<WritePlan> plan = PlanWrite(
      before, SignedResponse("o.example", 10, {{"ed25519:a", 'a'}}),
      "o.example", 1);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->result.response_stored);
  EXPECT_THAT(plan->result.new_keys, ::testing::ElementsAre("ed25519:a"));
  ASSERT_EQ(plan->keys.size(), 1u);

  before.keys = plan->keys;
  before.response_fetched_ts = 1;
  before.server = plan->server;
  plan = PlanWrite(before,
                   SignedResponse("o.example", 20, {{"ed25519:b", 'b'}}),
                   "o.example", 2);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->result.vanished_keys, ::testing::ElementsAre("ed25519:a"));
  // Only the response's own keys are written; a stays as it was.
  ASSERT_EQ(plan->keys.size(), 1u);
  EXPECT_EQ(plan->keys[0].key.key_id, "ed25519:b");
  EXPECT_EQ(plan->server.useful_until_ts, 20);
}

}  // namespace
}  // namespace keyverifier::store::testing
