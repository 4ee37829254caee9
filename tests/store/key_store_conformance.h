// The KeyStore conformance suite: one typed test suite that every
// implementation must pass. An implementation's test file defines a factory
// and instantiates the suite with it:
//
//   class Factory {
//    public:
//     static constexpr bool kPersistent;  // data survives a reopen
//     // Other processes may share it: fetch leases are real (else every
//     // server is the caller's to fetch).
//     static constexpr bool kShared;
//     // A fresh, empty store location per factory object; every call
//     // opens that same location again.
//     absl::StatusOr<std::unique_ptr<KeyStore>> Open();
//     // Makes the database fail any write of `key_id` from now on, after
//     // the rows written before it in the same transaction (SQL stores);
//     // UnimplementedError where that cannot be arranged.
//     absl::Status FailWritesOfKey(const std::string& key_id);
//   };
//   INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, KeyStoreConformance, Factory);
#ifndef KEYVERIFIER_TESTS_STORE_KEY_STORE_CONFORMANCE_H_
#define KEYVERIFIER_TESTS_STORE_KEY_STORE_CONFORMANCE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/store/key_store.h"
#include "tests/store/test_responses.h"

namespace keyverifier::store::testing {

inline constexpr char kOrigin[] = "origin.example";
inline constexpr char kNotaryA[] = "notary-a.example";
inline constexpr char kNotaryB[] = "notary-b.example";

// Key ids of the stored keys.
inline std::vector<std::string> KeyIds(const std::vector<StoredKey>& keys) {
  std::vector<std::string> ids;
  for (const StoredKey& k : keys) ids.push_back(k.key.key_id);
  return ids;
}

inline const StoredKey* FindKey(const std::vector<StoredKey>& keys,
                                const std::string& key_id) {
  for (const StoredKey& k : keys) {
    if (k.key.key_id == key_id) return &k;
  }
  return nullptr;
}
// A pointer into a temporary would dangle: keep the keys in a variable.
const StoredKey* FindKey(std::vector<StoredKey>&&, const std::string&) = delete;

template <typename Factory>
class KeyStoreConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<KeyStore>> store = factory_.Open();
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Stores and expects success.
  WriteResult Store(const core::ServerKeys& response,
                    const std::string& source, int64_t fetched_ts) {
    absl::StatusOr<WriteResult> r =
        store_->StoreResponse(response, source, fetched_ts);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : WriteResult();
  }

  std::vector<StoredKey> Keys(const std::string& server) {
    absl::StatusOr<std::vector<StoredKey>> keys = store_->GetKeys(server);
    EXPECT_TRUE(keys.ok()) << keys.status();
    return keys.ok() ? *keys : std::vector<StoredKey>();
  }

  std::vector<StoredResponse> Responses(const std::string& server) {
    absl::StatusOr<std::vector<StoredResponse>> r =
        store_->GetResponses(server);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::vector<StoredResponse>();
  }

  std::vector<ServerSummary> Servers(
      int64_t before = std::numeric_limits<int64_t>::max()) {
    absl::StatusOr<std::vector<ServerSummary>> s = store_->ListServers(before);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : std::vector<ServerSummary>();
  }

  Factory factory_;
  std::unique_ptr<KeyStore> store_;
};

TYPED_TEST_SUITE_P(KeyStoreConformance);

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TYPED_TEST_P(KeyStoreConformance, RoundTrip) {
  core::ServerKeys response = SignedResponse(
      kOrigin, 5000, {{"ed25519:a", 'a'}, {"ed25519:old", 'o', 1000}});
  WriteResult result = this->Store(response, kOrigin, 100);
  EXPECT_THAT(result.new_keys, ElementsAre("ed25519:a", "ed25519:old"));
  EXPECT_THAT(result.vanished_keys, IsEmpty());
  EXPECT_TRUE(result.response_stored);

  std::vector<StoredKey> keys = this->Keys(kOrigin);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].server_name, kOrigin);
  EXPECT_EQ(keys[0].key.key_id, "ed25519:a");
  EXPECT_EQ(keys[0].key.public_key, PublicKeyOf('a'));
  EXPECT_EQ(keys[0].key.valid_until_ts, 5000);
  EXPECT_EQ(keys[0].key.expired_ts, std::nullopt);
  EXPECT_FALSE(keys[0].is_old());
  EXPECT_EQ(keys[0].first_seen_ts, 100);
  EXPECT_EQ(keys[0].last_seen_ts, 100);
  EXPECT_THAT(keys[0].sources, ElementsAre(kOrigin));
  EXPECT_EQ(keys[1].key.key_id, "ed25519:old");
  EXPECT_EQ(keys[1].key.public_key, PublicKeyOf('o'));
  EXPECT_EQ(keys[1].key.valid_until_ts, std::nullopt);
  EXPECT_EQ(keys[1].key.expired_ts, 1000);
  EXPECT_TRUE(keys[1].is_old());

  std::vector<StoredResponse> responses = this->Responses(kOrigin);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].server_name, kOrigin);
  EXPECT_EQ(responses[0].source, kOrigin);
  EXPECT_EQ(responses[0].fetched_ts, 100);
  EXPECT_EQ(responses[0].valid_until_ts, 5000);
  EXPECT_EQ(responses[0].raw_json, response.raw_json);
  // The stored bytes still parse to the same keys.
  absl::StatusOr<core::ServerKeys> reparsed =
      core::ParseServerKeys(responses[0].raw_json);
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_EQ(reparsed->AllKeys(), response.AllKeys());

  EXPECT_THAT(this->Servers(),
              ElementsAre(ServerSummary{kOrigin, 5000, 100}));
}

TYPED_TEST_P(KeyStoreConformance, UnknownServerIsEmpty) {
  this->Store(SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}}), kOrigin, 1);
  EXPECT_THAT(this->Keys("other.example"), IsEmpty());
  EXPECT_THAT(this->Responses("other.example"), IsEmpty());
}

TYPED_TEST_P(KeyStoreConformance, RawBytesKeptExactly) {
  // Whitespace and member order as received, not re-encoded.
  core::ServerKeys response =
      SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}});
  response.raw_json = absl::StrCat("  ", response.raw_json, std::string(1, '\0'),
                                   "\xff\n");
  this->Store(response, kOrigin, 1);
  std::vector<StoredResponse> responses = this->Responses(kOrigin);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].raw_json, response.raw_json);
}

TYPED_TEST_P(KeyStoreConformance, NeverForgetsKeysAndReportsVanished) {
  this->Store(SignedResponse(kOrigin, 5000,
                             {{"ed25519:a", 'a'}, {"ed25519:b", 'b'}}),
              kOrigin, 100);
  WriteResult second = this->Store(
      SignedResponse(kOrigin, 9000, {{"ed25519:b", 'b'}, {"ed25519:c", 'c'}}),
      kOrigin, 200);
  EXPECT_THAT(second.new_keys, ElementsAre("ed25519:c"));
  EXPECT_THAT(second.vanished_keys, ElementsAre("ed25519:a"));

  std::vector<StoredKey> keys = this->Keys(kOrigin);
  ASSERT_THAT(KeyIds(keys), ElementsAre("ed25519:a", "ed25519:b", "ed25519:c"));
  // a keeps its last known validity and when it was last seen.
  EXPECT_EQ(keys[0].key.valid_until_ts, 5000);
  EXPECT_EQ(keys[0].key.expired_ts, std::nullopt);
  EXPECT_EQ(keys[0].last_seen_ts, 100);
  EXPECT_EQ(keys[1].key.valid_until_ts, 9000);
  EXPECT_EQ(keys[1].first_seen_ts, 100);
  EXPECT_EQ(keys[1].last_seen_ts, 200);
  EXPECT_EQ(keys[2].first_seen_ts, 200);
  // The newer response replaced the older one of the same source.
  std::vector<StoredResponse> responses = this->Responses(kOrigin);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].fetched_ts, 200);
  EXPECT_EQ(responses[0].valid_until_ts, 9000);
}

TYPED_TEST_P(KeyStoreConformance, SameKeySetReportsNothing) {
  this->Store(SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}}), kOrigin, 1);
  WriteResult again = this->Store(
      SignedResponse(kOrigin, 6000, {{"ed25519:a", 'a'}}), kOrigin, 2);
  EXPECT_THAT(again.new_keys, IsEmpty());
  EXPECT_THAT(again.vanished_keys, IsEmpty());
}

TYPED_TEST_P(KeyStoreConformance, OldKeyEntryRetiresACurrentKey) {
  this->Store(SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}}), kOrigin,
              100);
  // The origin rotated: a moved to old_verify_keys, b is current.
  WriteResult rotated = this->Store(
      SignedResponse(kOrigin, 9000,
                     {{"ed25519:b", 'b'}, {"ed25519:a", 'a', 4000}}),
      kOrigin, 200);
  EXPECT_THAT(rotated.vanished_keys, IsEmpty());
  EXPECT_THAT(rotated.new_keys, ElementsAre("ed25519:b"));
  std::vector<StoredKey> keys = this->Keys(kOrigin);
  const StoredKey* a = FindKey(keys, "ed25519:a");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->is_old());
  EXPECT_EQ(a->key.expired_ts, 4000);
  EXPECT_EQ(a->key.valid_until_ts, 5000);  // its last validity as current
  EXPECT_EQ(a->last_seen_ts, 200);
}

TYPED_TEST_P(KeyStoreConformance, ExpiryIsStickyAgainstStaleCopies) {
  this->Store(SignedResponse(kOrigin, 9000,
                             {{"ed25519:b", 'b'}, {"ed25519:a", 'a', 4000}}),
              kOrigin, 200);
  // A notary's cached copy from before the rotation still lists a as
  // current; a stays retired, though its last validity is recorded.
  WriteResult stale = this->Store(
      SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}}), kNotaryA, 300);
  // b is a current key this copy does not list.
  EXPECT_THAT(stale.vanished_keys, ElementsAre("ed25519:b"));
  std::vector<StoredKey> keys = this->Keys(kOrigin);
  const StoredKey* a = FindKey(keys, "ed25519:a");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->is_old());
  EXPECT_EQ(a->key.expired_ts, 4000);
  EXPECT_EQ(a->key.valid_until_ts, 5000);
  EXPECT_THAT(a->sources, ElementsAre(kNotaryA, kOrigin));
}

TYPED_TEST_P(KeyStoreConformance, EarliestExpiryWins) {
  this->Store(SignedResponse(kOrigin, 9000,
                             {{"ed25519:b", 'b'}, {"ed25519:a", 'a', 4000}}),
              kOrigin, 200);
  this->Store(SignedResponse(kOrigin, 9000,
                             {{"ed25519:b", 'b'}, {"ed25519:a", 'a', 3000}}),
              kNotaryA, 210);
  this->Store(SignedResponse(kOrigin, 9000,
                             {{"ed25519:b", 'b'}, {"ed25519:a", 'a', 4500}}),
              kNotaryB, 220);
  const std::vector<StoredKey> keys = this->Keys(kOrigin);
  const StoredKey* a = FindKey(keys, "ed25519:a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->key.expired_ts, 3000);
}

TYPED_TEST_P(KeyStoreConformance, OldKeysAreNeverReportedVanished) {
  this->Store(SignedResponse(kOrigin, 9000,
                             {{"ed25519:b", 'b'}, {"ed25519:a", 'a', 4000}}),
              kOrigin, 200);
  WriteResult later = this->Store(
      SignedResponse(kOrigin, 9500, {{"ed25519:b", 'b'}}), kOrigin, 300);
  EXPECT_THAT(later.vanished_keys, IsEmpty());
  // Still there, still old.
  const std::vector<StoredKey> keys = this->Keys(kOrigin);
  const StoredKey* a = FindKey(keys, "ed25519:a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->key.expired_ts, 4000);
}

TYPED_TEST_P(KeyStoreConformance, LatestValidUntilWins) {
  this->Store(SignedResponse(kOrigin, 8000, {{"ed25519:a", 'a'}}), kOrigin,
              100);
  // A notary's older copy arrives later with a shorter validity.
  this->Store(SignedResponse(kOrigin, 3000, {{"ed25519:a", 'a'}}), kNotaryA,
              150);
  const std::vector<StoredKey> keys = this->Keys(kOrigin);
  const StoredKey* a = FindKey(keys, "ed25519:a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->key.valid_until_ts, 8000);
  EXPECT_THAT(this->Servers(), ElementsAre(ServerSummary{kOrigin, 8000, 150}));
}

TYPED_TEST_P(KeyStoreConformance, MultipleSources) {
  core::ServerKeys direct = SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}});
  core::ServerKeys via_a = SignedResponse(kOrigin, 4000, {{"ed25519:a", 'a'}});
  core::ServerKeys via_b =
      SignedResponse(kOrigin, 6000, {{"ed25519:a", 'a'}, {"ed25519:b", 'b'}});
  this->Store(via_a, kNotaryA, 300);
  this->Store(direct, kOrigin, 100);
  this->Store(via_b, kNotaryB, 200);

  std::vector<StoredKey> keys = this->Keys(kOrigin);
  ASSERT_THAT(KeyIds(keys), ElementsAre("ed25519:a", "ed25519:b"));
  EXPECT_THAT(keys[0].sources, ElementsAre(kNotaryA, kNotaryB, kOrigin));
  EXPECT_EQ(keys[0].first_seen_ts, 100);
  EXPECT_EQ(keys[0].last_seen_ts, 300);
  EXPECT_EQ(keys[0].key.valid_until_ts, 6000);
  EXPECT_THAT(keys[1].sources, ElementsAre(kNotaryB));

  // One response per source, most recently fetched first.
  std::vector<StoredResponse> responses = this->Responses(kOrigin);
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[0], (StoredResponse{kOrigin, kNotaryA, 300, 4000,
                                          via_a.raw_json}));
  EXPECT_EQ(responses[1], (StoredResponse{kOrigin, kNotaryB, 200, 6000,
                                          via_b.raw_json}));
  EXPECT_EQ(responses[2],
            (StoredResponse{kOrigin, kOrigin, 100, 5000, direct.raw_json}));
}

TYPED_TEST_P(KeyStoreConformance, OlderResponseDoesNotReplaceNewer) {
  core::ServerKeys newer = SignedResponse(kOrigin, 9000, {{"ed25519:b", 'b'}});
  this->Store(newer, kOrigin, 500);
  // Fetched earlier, written later (e.g. by a slower replica).
  WriteResult late = this->Store(
      SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}}), kOrigin, 400);
  EXPECT_FALSE(late.response_stored);
  std::vector<StoredResponse> responses = this->Responses(kOrigin);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].fetched_ts, 500);
  EXPECT_EQ(responses[0].raw_json, newer.raw_json);
  // Its keys are still learnt.
  EXPECT_THAT(KeyIds(this->Keys(kOrigin)),
              ElementsAre("ed25519:a", "ed25519:b"));
  EXPECT_THAT(this->Servers(), ElementsAre(ServerSummary{kOrigin, 9000, 500}));
}

TYPED_TEST_P(KeyStoreConformance, RefreshCandidates) {
  this->Store(SignedResponse("late.example", 9000, {{"ed25519:a", 'a'}}),
              "late.example", 10);
  this->Store(SignedResponse("early.example", 2000, {{"ed25519:a", 'b'}}),
              "early.example", 20);
  this->Store(SignedResponse("middle.example", 5000, {{"ed25519:a", 'c'}}),
              kNotaryA, 30);
  this->Store(SignedResponse("also-middle.example", 5000, {{"ed25519:a", 'd'}}),
              kNotaryA, 40);
  EXPECT_THAT(this->Servers(),
              ElementsAre(ServerSummary{"early.example", 2000, 20},
                          ServerSummary{"also-middle.example", 5000, 40},
                          ServerSummary{"middle.example", 5000, 30},
                          ServerSummary{"late.example", 9000, 10}));
  EXPECT_THAT(this->Servers(5000),
              ElementsAre(ServerSummary{"early.example", 2000, 20}));
  EXPECT_THAT(this->Servers(5001),
              ElementsAre(ServerSummary{"early.example", 2000, 20},
                          ServerSummary{"also-middle.example", 5000, 40},
                          ServerSummary{"middle.example", 5000, 30}));
  EXPECT_THAT(this->Servers(2000), IsEmpty());
  // A refresh moves the server back.
  this->Store(SignedResponse("early.example", 12000, {{"ed25519:a", 'b'}}),
              "early.example", 50);
  EXPECT_THAT(this->Servers(5001),
              ElementsAre(ServerSummary{"also-middle.example", 5000, 40},
                          ServerSummary{"middle.example", 5000, 30}));
}

TYPED_TEST_P(KeyStoreConformance, InvalidWritesAreRefusedAndChangeNothing) {
  core::ServerKeys good = SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}});
  this->Store(good, kOrigin, 100);

  struct Case {
    std::string name;
    core::ServerKeys response;
    std::string source;
    int64_t fetched_ts;
    std::string message;
  };
  core::ServerKeys bad_server = good;
  bad_server.server_name = "bad server";
  core::ServerKeys empty_raw = good;
  empty_raw.raw_json.clear();
  core::ServerKeys no_keys = good;
  no_keys.verify_keys.clear();
  core::ServerKeys bad_id = good;
  bad_id.verify_keys[0].key_id = "ed25519:no-dashes";
  core::ServerKeys twice = good;
  twice.verify_keys.push_back(twice.verify_keys[0]);
  // Current and old, but two different keys for one key id.
  core::ServerKeys two_keys = good;
  two_keys.old_verify_keys.push_back(two_keys.verify_keys[0]);
  two_keys.old_verify_keys[0].valid_until_ts.reset();
  two_keys.old_verify_keys[0].expired_ts = 10;
  two_keys.old_verify_keys[0].public_key = PublicKeyOf('z');
  core::ServerKeys no_until = good;
  no_until.verify_keys[0].valid_until_ts.reset();
  core::ServerKeys no_expiry = good;
  no_expiry.old_verify_keys.push_back(no_expiry.verify_keys[0]);
  no_expiry.old_verify_keys[0].key_id = "ed25519:o";
  no_expiry.old_verify_keys[0].valid_until_ts.reset();
  std::vector<Case> cases = {
      {"bad server", bad_server, kOrigin, 200, "bad server_name"},
      {"bad source", good, "not a name", 200,
       "key response for origin.example: bad source"},
      {"negative fetched_ts", good, kOrigin, -1, "fetched_ts is negative (-1)"},
      {"empty raw_json", empty_raw, kOrigin, 200, "raw_json is empty"},
      {"no verify_keys", no_keys, kOrigin, 200, "no verify_keys"},
      {"bad key id", bad_id, kOrigin, 200,
       "verify_keys has a bad key id \"ed25519:no-dashes\""},
      {"key twice", twice, kOrigin, 200,
       "key ed25519:a is listed more than once in verify_keys"},
      {"key id with two keys", two_keys, kOrigin, 200,
       "key id ed25519:a is given two different keys"},
      {"no valid_until_ts", no_until, kOrigin, 200,
       "current key ed25519:a has no valid_until_ts"},
      {"no expired_ts", no_expiry, kOrigin, 200,
       "old key ed25519:o has no expired_ts"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<WriteResult> r =
        this->store_->StoreResponse(c.response, c.source, c.fetched_ts);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(c.message));
  }
  std::vector<StoredKey> keys = this->Keys(kOrigin);
  ASSERT_THAT(KeyIds(keys), ElementsAre("ed25519:a"));
  EXPECT_EQ(keys[0].last_seen_ts, 100);
  EXPECT_THAT(keys[0].sources, ElementsAre(kOrigin));
  EXPECT_THAT(this->Responses(kOrigin),
              ElementsAre(StoredResponse{kOrigin, kOrigin, 100, 5000,
                                         good.raw_json}));
  EXPECT_THAT(this->Servers(), ElementsAre(ServerSummary{kOrigin, 5000, 100}));
  EXPECT_THAT(this->Servers(), ::testing::SizeIs(1));
}

TYPED_TEST_P(KeyStoreConformance, ChangedPublicKeyIsRefusedWhole) {
  core::ServerKeys first = SignedResponse(kOrigin, 5000, {{"ed25519:b", 'b'}});
  this->Store(first, kOrigin, 100);
  // A new key a, and b with other bytes than stored: nothing of it is kept.
  absl::StatusOr<WriteResult> r = this->store_->StoreResponse(
      SignedResponse(kOrigin, 9000, {{"ed25519:a", 'a'}, {"ed25519:b", 'x'}}),
      kNotaryA, 200);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(),
              HasSubstr("key ed25519:b of origin.example from "
                        "notary-a.example: public key"));
  std::vector<StoredKey> keys = this->Keys(kOrigin);
  ASSERT_THAT(KeyIds(keys), ElementsAre("ed25519:b"));
  EXPECT_EQ(keys[0].key.public_key, PublicKeyOf('b'));
  EXPECT_THAT(keys[0].sources, ElementsAre(kOrigin));
  EXPECT_THAT(this->Responses(kOrigin),
              ElementsAre(StoredResponse{kOrigin, kOrigin, 100, 5000,
                                         first.raw_json}));
  EXPECT_THAT(this->Servers(), ElementsAre(ServerSummary{kOrigin, 5000, 100}));
}

TYPED_TEST_P(KeyStoreConformance, StorageFailureMidWriteRollsBack) {
  core::ServerKeys first = SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}});
  this->Store(first, kOrigin, 100);
  absl::Status injected = this->factory_.FailWritesOfKey("ed25519:z");
  if (absl::IsUnimplemented(injected)) {
    GTEST_SKIP() << "this store cannot fail mid-write: " << injected;
  }
  ASSERT_TRUE(injected.ok()) << injected;
  // The server row, the response and key a are written before key z fails.
  absl::StatusOr<WriteResult> r = this->store_->StoreResponse(
      SignedResponse(kOrigin, 9000, {{"ed25519:a", 'a'}, {"ed25519:z", 'z'}}),
      kOrigin, 200);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("write key ed25519:z of "
                                              "origin.example"));
  std::vector<StoredKey> keys = this->Keys(kOrigin);
  ASSERT_THAT(KeyIds(keys), ElementsAre("ed25519:a"));
  EXPECT_EQ(keys[0].key.valid_until_ts, 5000);
  EXPECT_EQ(keys[0].last_seen_ts, 100);
  EXPECT_THAT(this->Responses(kOrigin),
              ElementsAre(StoredResponse{kOrigin, kOrigin, 100, 5000,
                                         first.raw_json}));
  EXPECT_THAT(this->Servers(), ElementsAre(ServerSummary{kOrigin, 5000, 100}));
  // The store is still usable afterwards.
  this->Store(SignedResponse(kOrigin, 9000, {{"ed25519:a", 'a'}}), kOrigin,
              300);
  EXPECT_THAT(this->Servers(), ElementsAre(ServerSummary{kOrigin, 9000, 300}));
}

// A batch write stores each response as StoreResponse would: one the merge
// rule refuses, or one that is invalid, gets its own error and the others
// are stored.
TYPED_TEST_P(KeyStoreConformance, BatchWriteMergesEachResponseOnItsOwn) {
  core::ServerKeys known = SignedResponse(kOrigin, 5000, {{"ed25519:b", 'b'}});
  this->Store(known, kOrigin, 100);
  const core::ServerKeys changed =
      SignedResponse(kOrigin, 9000, {{"ed25519:a", 'a'}, {"ed25519:b", 'x'}});
  const core::ServerKeys second = SignedResponse("second.example", 7000, {{"ed25519:s", 's'}});
  const core::ServerKeys third = SignedResponse("third.example", 8000, {{"ed25519:t", 't'}});
  core::ServerKeys invalid = third;
  invalid.raw_json.clear();
  std::vector<absl::StatusOr<WriteResult>> r = this->store_->StoreResponses(
      {{&third, "third.example"}, {&changed, kOrigin}, {&invalid, "third.example"},
       {&second, kNotaryA}},
      200);
  ASSERT_EQ(r.size(), 4u);
  ASSERT_TRUE(r[0].ok()) << r[0].status();
  EXPECT_THAT(r[0]->new_keys, ElementsAre("ed25519:t"));
  EXPECT_EQ(r[1].status().code(), absl::StatusCode::kFailedPrecondition) << r[1].status();
  EXPECT_EQ(r[2].status().code(), absl::StatusCode::kInvalidArgument) << r[2].status();
  ASSERT_TRUE(r[3].ok()) << r[3].status();
  // The refused one changed nothing; the others are there as if stored alone.
  std::vector<StoredKey> keys = this->Keys(kOrigin);
  ASSERT_THAT(KeyIds(keys), ElementsAre("ed25519:b"));
  EXPECT_EQ(keys[0].key.public_key, PublicKeyOf('b'));
  EXPECT_THAT(KeyIds(this->Keys("second.example")), ElementsAre("ed25519:s"));
  EXPECT_THAT(this->Responses("second.example"),
              ElementsAre(StoredResponse{"second.example", kNotaryA, 200, 7000,
                                         second.raw_json}));
  EXPECT_THAT(this->Servers(),
              ElementsAre(ServerSummary{kOrigin, 5000, 100},
                          ServerSummary{"second.example", 7000, 200},
                          ServerSummary{"third.example", 8000, 200}));
}

// Every key field, for comparing what a write reports with what is read.
inline std::vector<std::string> Described(const std::vector<StoredKey>& keys) {
  std::vector<std::string> out;
  for (const StoredKey& k : keys) {
    out.push_back(absl::StrCat(k.server_name, " ", k.key.key_id, " ",
                               absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(k.key.public_key.data()), k.key.public_key.size())), " ",
                               k.key.valid_until_ts.value_or(-1), " ",
                               k.key.expired_ts.value_or(-1), " ", k.first_seen_ts, " ",
                               k.last_seen_ts, " ", absl::StrJoin(k.sources, ",")));
  }
  return out;
}

// A write reports the server's keys afterwards, exactly as they are then
// read: new, merged, retired and vanished keys, from several sources, and
// through the batch write too.
TYPED_TEST_P(KeyStoreConformance, WriteReportsTheKeysAfterIt) {
  WriteResult first = this->Store(
      SignedResponse(kOrigin, 5000, {{"ed25519:a", 'a'}, {"ed25519:b", 'b'}}), kOrigin, 100);
  EXPECT_EQ(Described(first.keys), Described(this->Keys(kOrigin)));
  EXPECT_EQ(first.keys.size(), 2u);
  // b vanishes, a retires, c is new, from a notary.
  WriteResult second = this->Store(
      SignedResponse(kOrigin, 9000, {{"ed25519:c", 'c'}, {"ed25519:a", 'a', 4000}}), kNotaryA,
      200);
  EXPECT_EQ(Described(second.keys), Described(this->Keys(kOrigin)));
  EXPECT_EQ(second.keys.size(), 3u);
  // An older copy that changes nothing but a key's sources.
  WriteResult third = this->Store(SignedResponse(kOrigin, 4000, {{"ed25519:c", 'c'}}), kNotaryB, 50);
  EXPECT_EQ(Described(third.keys), Described(this->Keys(kOrigin)));
  const core::ServerKeys other = SignedResponse("other.example", 7000, {{"ed25519:o", 'o'}});
  const core::ServerKeys fourth = SignedResponse(kOrigin, 9500, {{"ed25519:d", 'd'}});
  std::vector<absl::StatusOr<WriteResult>> batch =
      this->store_->StoreResponses({{&other, "other.example"}, {&fourth, kOrigin}}, 300);
  ASSERT_EQ(batch.size(), 2u);
  ASSERT_TRUE(batch[0].ok()) << batch[0].status();
  ASSERT_TRUE(batch[1].ok()) << batch[1].status();
  EXPECT_EQ(Described(batch[0]->keys), Described(this->Keys("other.example")));
  EXPECT_EQ(Described(batch[1]->keys), Described(this->Keys(kOrigin)));
  EXPECT_EQ(batch[1]->keys.size(), 4u);
}

// MSC4499: a binding only notaries vouched for is provisional; the origin's
// own response replaces it, and says so.
TYPED_TEST_P(KeyStoreConformance, OriginReplacesABindingOnlyNotariesGave) {
  this->Store(SignedResponse(kOrigin, 5000, {{"ed25519:b", 'x'}}), kNotaryA, 100);
  this->Store(SignedResponse(kOrigin, 5000, {{"ed25519:b", 'x'}}), kNotaryB, 150);
  WriteResult r =
      this->Store(SignedResponse(kOrigin, 9000, {{"ed25519:b", 'b'}}), kOrigin, 200);
  EXPECT_THAT(r.rebound_keys, ElementsAre("ed25519:b"));
  EXPECT_THAT(r.new_keys, IsEmpty());
  std::vector<StoredKey> keys = this->Keys(kOrigin);
  ASSERT_THAT(KeyIds(keys), ElementsAre("ed25519:b"));
  EXPECT_EQ(keys[0].key.public_key, PublicKeyOf('b'));
  EXPECT_THAT(keys[0].sources, ElementsAre(kOrigin));  // the notaries' word is gone
  EXPECT_EQ(keys[0].first_seen_ts, 200);
  EXPECT_EQ(keys[0].key.valid_until_ts, 9000);
  EXPECT_EQ(Described(r.keys), Described(keys));
  // Now confirmed: a notary can no longer change it, nor can the origin.
  for (const char* source : {kNotaryA, kOrigin}) {
    SCOPED_TRACE(source);
    absl::StatusOr<WriteResult> again = this->store_->StoreResponse(
        SignedResponse(kOrigin, 9500, {{"ed25519:b", 'x'}}), source, 300);
    ASSERT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
    EXPECT_THAT(again.status().message(), HasSubstr("confirmed by the origin"));
    EXPECT_EQ(again.status().GetPayload(kConflictingKeyId), absl::Cord("ed25519:b"));
  }
  EXPECT_EQ(this->Keys(kOrigin)[0].key.public_key, PublicKeyOf('b'));
}

// A provisional binding stands against other notaries: only the origin
// can replace it.
TYPED_TEST_P(KeyStoreConformance, AnotherNotaryCannotReplaceAProvisionalBinding) {
  this->Store(SignedResponse(kOrigin, 5000, {{"ed25519:b", 'x'}}), kNotaryA, 100);
  absl::StatusOr<WriteResult> r = this->store_->StoreResponse(
      SignedResponse(kOrigin, 9000, {{"ed25519:b", 'b'}}), kNotaryB, 200);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("through notaries only; only the origin itself"));
  EXPECT_EQ(r.status().GetPayload(kConflictingKeyId), absl::Cord("ed25519:b"));
  EXPECT_EQ(this->Keys(kOrigin)[0].key.public_key, PublicKeyOf('x'));
}

// A response listing one key both as current and as old (notary answers
// have, Synapse #12736) gives one key: valid_until_ts from the current
// entry, expired_ts from the old one; it is an old key.
TYPED_TEST_P(KeyStoreConformance, AKeyListedCurrentAndOldIsOneOldKey) {
  WriteResult r = this->Store(
      SignedResponse(kOrigin, 9000, {{"ed25519:a", 'a'}, {"ed25519:a", 'a', 4000}}), kNotaryA,
      100);
  EXPECT_THAT(r.new_keys, ElementsAre("ed25519:a"));
  std::vector<StoredKey> keys = this->Keys(kOrigin);
  ASSERT_THAT(KeyIds(keys), ElementsAre("ed25519:a"));
  EXPECT_TRUE(keys[0].is_old());
  EXPECT_EQ(keys[0].key.expired_ts, 4000);
  EXPECT_EQ(keys[0].key.valid_until_ts, 9000);
  EXPECT_EQ(Described(r.keys), Described(keys));
}

// A failure of the storage fails the whole batch, and nothing of it is kept.
TYPED_TEST_P(KeyStoreConformance, BatchWriteStorageFailureKeepsNothing) {
  absl::Status injected = this->factory_.FailWritesOfKey("ed25519:z");
  if (absl::IsUnimplemented(injected)) {
    GTEST_SKIP() << "this store cannot fail mid-write: " << injected;
  }
  ASSERT_TRUE(injected.ok()) << injected;
  const core::ServerKeys fine = SignedResponse("a.example", 7000, {{"ed25519:a", 'a'}});
  const core::ServerKeys failing = SignedResponse("b.example", 7000, {{"ed25519:z", 'z'}});
  std::vector<absl::StatusOr<WriteResult>> r =
      this->store_->StoreResponses({{&fine, "a.example"}, {&failing, "b.example"}}, 200);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_FALSE(r[0].ok());
  EXPECT_FALSE(r[1].ok());
  EXPECT_THAT(r[1].status().message(), HasSubstr("ed25519:z"));
  EXPECT_THAT(this->Keys("a.example"), IsEmpty());
  EXPECT_THAT(this->Servers(), IsEmpty());
}

TYPED_TEST_P(KeyStoreConformance, ReopenKeepsEverything) {
  if (!TypeParam::kPersistent) GTEST_SKIP() << "not a persistent store";
  core::ServerKeys response = SignedResponse(
      kOrigin, 5000, {{"ed25519:a", 'a'}, {"ed25519:old", 'o', 1000}});
  this->Store(response, kOrigin, 100);
  this->Store(SignedResponse(kOrigin, 4000, {{"ed25519:a", 'a'}}), kNotaryA,
              110);
  std::vector<StoredKey> before = this->Keys(kOrigin);
  this->store_.reset();

  absl::StatusOr<std::unique_ptr<KeyStore>> reopened = this->factory_.Open();
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  this->store_ = *std::move(reopened);
  std::vector<StoredKey> after = this->Keys(kOrigin);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].key, before[i].key);
    EXPECT_EQ(after[i].sources, before[i].sources);
    EXPECT_EQ(after[i].first_seen_ts, before[i].first_seen_ts);
    EXPECT_EQ(after[i].last_seen_ts, before[i].last_seen_ts);
  }
  EXPECT_THAT(KeyIds(after), ElementsAre("ed25519:a", "ed25519:old"));
  EXPECT_THAT(after[0].sources, ElementsAre(kNotaryA, kOrigin));
  std::vector<StoredResponse> responses = this->Responses(kOrigin);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[1].raw_json, response.raw_json);
  EXPECT_THAT(this->Servers(), ElementsAre(ServerSummary{kOrigin, 5000, 110}));
  // Reopening an up-to-date store changes no version.
  EXPECT_EQ(this->store_->SchemaVersion().value_or(-1), kSchemaVersion);
}

TYPED_TEST_P(KeyStoreConformance, ConcurrentWriters) {
  constexpr int kThreads = 4;
  constexpr int kWrites = 15;
  std::vector<std::thread> threads;
  std::vector<absl::Status> errors(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &errors] {
      std::string notary = absl::StrCat("notary", t, ".example");
      std::string own = absl::StrCat("own", t, ".example");
      for (int i = 0; i < kWrites; ++i) {
        // Every thread reports the shared server's key s and a key of its
        // own, through its own notary; and writes a server of its own.
        core::ServerKeys shared = SignedResponse(
            "shared.example", 1000 + t * 100 + i,
            {{"ed25519:s", 's'}, {absl::StrCat("ed25519:t", t), char('a' + t)}});
        absl::StatusOr<WriteResult> r =
            this->store_->StoreResponse(shared, notary, 10 + i);
        if (!r.ok() && errors[t].ok()) errors[t] = r.status();
        core::ServerKeys mine = SignedResponse(
            own, 2000 + i, {{absl::StrCat("ed25519:k", i), char('a' + i)}});
        r = this->store_->StoreResponse(mine, own, 10 + i);
        if (!r.ok() && errors[t].ok()) errors[t] = r.status();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(errors[t].ok()) << errors[t];

  std::vector<StoredKey> shared = this->Keys("shared.example");
  ASSERT_THAT(KeyIds(shared), ElementsAre("ed25519:s", "ed25519:t0",
                                          "ed25519:t1", "ed25519:t2",
                                          "ed25519:t3"));
  EXPECT_THAT(shared[0].sources,
              ElementsAre("notary0.example", "notary1.example",
                          "notary2.example", "notary3.example"));
  EXPECT_EQ(shared[0].key.valid_until_ts, 1000 + 3 * 100 + kWrites - 1);
  EXPECT_EQ(shared[0].first_seen_ts, 10);
  EXPECT_EQ(shared[0].last_seen_ts, 10 + kWrites - 1);
  EXPECT_EQ(this->Responses("shared.example").size(), size_t{kThreads});
  for (int t = 0; t < kThreads; ++t) {
    std::string own = absl::StrCat("own", t, ".example");
    EXPECT_EQ(this->Keys(own).size(), size_t{kWrites}) << own;
  }
  std::vector<ServerSummary> servers = this->Servers();
  ASSERT_EQ(servers.size(), size_t{kThreads + 1});
  EXPECT_EQ(servers[0], (ServerSummary{"shared.example",
                                       1000 + 3 * 100 + kWrites - 1,
                                       10 + kWrites - 1}));
}

TYPED_TEST_P(KeyStoreConformance, FetchLeasesGiveEachServerToOneHolder) {
  KeyStore& s = *this->store_;
  const std::vector<std::string> ab = {"a.example", "b.example"};
  using C = FetchClaim;
  absl::StatusOr<std::vector<C>> first = s.ClaimFetches(ab, "h1", 100, 100, 200);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(*first, ElementsAre(C::kMine, C::kMine));
  if (!TypeParam::kShared) {
    // Nobody else can hold a lease: everything is the caller's.
    EXPECT_THAT(*s.ClaimFetches(ab, "h2", 100, 101, 200), ElementsAre(C::kMine, C::kMine));
    EXPECT_TRUE(s.ReleaseFetches({{"a.example", true}}, "h1", 102).ok());
    return;
  }
  // Another holder waits while the lease runs.
  EXPECT_THAT(*s.ClaimFetches({"a.example", "c.example"}, "h2", 100, 150, 250),
              ElementsAre(C::kHeld, C::kMine));
  // A release by someone else's name changes nothing.
  ASSERT_TRUE(s.ReleaseFetches({{"a.example", true}}, "h2", 151).ok());
  EXPECT_THAT(*s.ClaimFetches({"a.example"}, "h3", 100, 152, 250), ElementsAre(C::kHeld));
  // The holder's fetches finish: a succeeded, b failed.
  ASSERT_TRUE(s.ReleaseFetches({{"a.example", true}, {"b.example", false}}, "h1", 160).ok());
  // Those who waited since before that read the result instead of fetching.
  EXPECT_THAT(*s.ClaimFetches(ab, "h2", 150, 161, 261), ElementsAre(C::kDone, C::kFailed));
  // A fetch that finished before a holder's need began is no answer to it.
  EXPECT_THAT(*s.ClaimFetches(ab, "h2", 170, 171, 271), ElementsAre(C::kMine, C::kMine));
  // A holder that dies keeps its lease only until it expires (c: until 250).
  EXPECT_THAT(*s.ClaimFetches({"c.example"}, "h3", 200, 249, 349), ElementsAre(C::kHeld));
  EXPECT_THAT(*s.ClaimFetches({"c.example"}, "h3", 200, 251, 351), ElementsAre(C::kMine));
  // Many servers at once, beyond one statement's chunk.
  std::vector<std::string> many;
  for (int i = 0; i < 600; ++i) many.push_back(absl::StrCat("s", i, ".example"));
  absl::StatusOr<std::vector<C>> claimed = s.ClaimFetches(many, "h4", 300, 300, 400);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_EQ(std::count(claimed->begin(), claimed->end(), C::kMine), 600);
  claimed = s.ClaimFetches(many, "h5", 300, 301, 400);
  EXPECT_EQ(std::count(claimed->begin(), claimed->end(), C::kHeld), 600);
}

TYPED_TEST_P(KeyStoreConformance, SchemaVersionIsRecorded) {
  absl::StatusOr<int> version = this->store_->SchemaVersion();
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, kSchemaVersion);
}

REGISTER_TYPED_TEST_SUITE_P(KeyStoreConformance, RoundTrip, WriteReportsTheKeysAfterIt,
                            FetchLeasesGiveEachServerToOneHolder,
                            OriginReplacesABindingOnlyNotariesGave,
                            AnotherNotaryCannotReplaceAProvisionalBinding,
                            AKeyListedCurrentAndOldIsOneOldKey,
                            UnknownServerIsEmpty, RawBytesKeptExactly,
                            NeverForgetsKeysAndReportsVanished,
                            SameKeySetReportsNothing,
                            OldKeyEntryRetiresACurrentKey,
                            ExpiryIsStickyAgainstStaleCopies,
                            EarliestExpiryWins,
                            OldKeysAreNeverReportedVanished,
                            LatestValidUntilWins, MultipleSources,
                            OlderResponseDoesNotReplaceNewer,
                            RefreshCandidates,
                            InvalidWritesAreRefusedAndChangeNothing,
                            ChangedPublicKeyIsRefusedWhole,
                            StorageFailureMidWriteRollsBack,
                            BatchWriteMergesEachResponseOnItsOwn,
                            BatchWriteStorageFailureKeepsNothing,
                            ReopenKeepsEverything, ConcurrentWriters,
                            SchemaVersionIsRecorded);

}  // namespace keyverifier::store::testing

#endif  // KEYVERIFIER_TESTS_STORE_KEY_STORE_CONFORMANCE_H_
