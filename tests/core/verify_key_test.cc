#include "service/core/verify_key.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/room_version.h"

namespace keyverifier::core {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kDay = 24 * 3600 * 1000;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

const RoomVersion& Room(int version) {
  absl::StatusOr<const RoomVersion*> room =
      LookupRoomVersion(absl::StrCat(version));
  EXPECT_TRUE(room.ok()) << room.status();
  return **room;
}

VerifyKey Current(std::optional<int64_t> valid_until_ts,
                  std::optional<int64_t> confirmed_ts = std::nullopt) {
  VerifyKey key;
  key.key_id = "ed25519:cur";
  key.valid_until_ts = valid_until_ts;
  key.confirmed_ts = confirmed_ts;
  return key;
}

VerifyKey Old(int64_t expired_ts) {
  VerifyKey key;
  key.key_id = "ed25519:old";
  key.expired_ts = expired_ts;
  return key;
}

TEST(VerifyKeyTest, MaxKeyValidityIsSevenDays) {
  EXPECT_EQ(kMaxKeyValidityMs, 7 * kDay);
  EXPECT_EQ(kMaxKeyValidityMs, 604'800'000);
}

TEST(VerifyKeyTest, IsValidEd25519KeyId) {
  struct Case {
    std::string key_id;
    bool valid;
  };
  const Case cases[] = {
      {"ed25519:1", true},
      {"ed25519:a", true},
      {"ed25519:_", true},
      {"ed25519:abc_DEF_0123456789", true},
      {"ed25519:auto", true},
      {std::string("ed25519:") + std::string(300, 'k'), true},
      {"", false},
      {"ed25519", false},
      {"ed25519:", false},
      {"ED25519:a", false},
      {"Ed25519:a", false},
      {"ed25519a", false},
      {"xed25519:a", false},
      {" ed25519:a", false},
      {"ed25519: a", false},
      {"ed25519:a ", false},
      {"ed25519:a-b", false},
      {"ed25519:a.b", false},
      {"ed25519:a:b", false},
      {"ed25519:a/b", false},
      {"ed25519:a+b", false},
      {"ed25519:a=", false},
      {"ed25519:\xc3\xa9", false},  // é
      {std::string("ed25519:a\0b", 11), false},
      {"curve25519:a", false},
      {"signed_curve25519:a", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("\"", c.key_id, "\""));
    EXPECT_EQ(IsValidEd25519KeyId(c.key_id), c.valid);
  }
}

TEST(VerifyKeyTest, KeyAlgorithm) {
  struct Case {
    const char* key_id;
    const char* algorithm;
  };
  const Case cases[] = {
      {"ed25519:1", "ed25519"},     {"curve25519:AAA", "curve25519"},
      {"ed25519:a:b", "ed25519"},   {"ed25519", "ed25519"},
      {":x", ""},                   {"", ""},
      {"ED25519:a", "ED25519"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.key_id);
    EXPECT_EQ(KeyAlgorithm(c.key_id), c.algorithm);
  }
}

// Room versions 1-4 ignore valid_until_ts; 5 and later require the key's
// usable validity, min(valid_until_ts, confirmed_ts + 7 days), to cover the
// event (no cap for a pinned key, which has no confirmed_ts).
TEST(VerifyKeyTest, CurrentKeyValidityPerRoomVersion) {
  struct Case {
    const char* name;
    std::optional<int64_t> valid_until_ts;
    int64_t origin_server_ts;
    std::optional<int64_t> confirmed_ts;  // the last response listing it
    bool usable_from_v5;
    const char* why;  // substring of the reason when unusable
  };
  const Case cases[] = {
      {"valid until after the event", kNow + kDay, kNow, kNow, true, ""},
      {"valid until exactly the event", kNow - kDay, kNow - kDay, kNow, true,
       ""},
      {"valid until 1 ms before the event", kNow - kDay, kNow - kDay + 1, kNow,
       false, "is valid until 1699913600000, before the event's "
              "origin_server_ts 1699913600001"},
      {"expired long before the event", 1000, kNow, kNow, false,
       "valid until 1000"},
      // The cap: a key claiming 30 days, fetched now, covers events up to
      // now + 7 days.
      {"capped: event at fetch + 7d", kNow + 30 * kDay, kNow + 7 * kDay, kNow,
       true, ""},
      {"capped: event at fetch + 7d + 1ms", kNow + 30 * kDay,
       kNow + 7 * kDay + 1, kNow, false,
       "is valid until 1700604800000 (7 days after the last response listing "
       "it, fetched at 1700000000000; it says 1702592000000)"},
      // A server that stopped publishing the key (last listed 8 days ago):
      // it no longer verifies an event sent now, whatever it claimed.
      {"stopped publishing 8 days ago", kNow + 30 * kDay, kNow, kNow - 8 * kDay,
       false, "is valid until 1699913600000 (7 days after the last response"},
      {"last listed 6 days ago", kNow + 30 * kDay, kNow, kNow - 6 * kDay, true, ""},
      // A pinned key (no fetch) is trusted for its valid_until_ts.
      {"pinned, 30 days", kNow + 30 * kDay, kNow + 20 * kDay, std::nullopt, true, ""},
      // Below the cap valid_until_ts decides, to the millisecond.
      {"under the cap: at valid_until_ts", kNow + 3 * kDay, kNow + 3 * kDay,
       kNow, true, ""},
      {"under the cap: 1ms after", kNow + 3 * kDay, kNow + 3 * kDay + 1, kNow,
       false, "valid until 1700259200000, before"},
      // valid_until_ts equal to the cap.
      {"at the cap exactly", kNow + 7 * kDay, kNow + 7 * kDay, kNow, true, ""},
      {"at the cap, 1ms after", kNow + 7 * kDay, kNow + 7 * kDay + 1, kNow,
       false, "valid until 1700604800000, before"},
      // An event from the past is covered by a key whose validity has passed
      // since, as long as it was valid when the event was sent.
      {"past event, key since lapsed", kNow - 10 * kDay, kNow - 20 * kDay, kNow,
       true, ""},
      {"no valid_until_ts", std::nullopt, kNow, kNow, false,
       "has no valid_until_ts"},
      // confirmed + 7 days must not overflow.
      {"confirmed near the end of time", kMax, kMax, kMax - 1, true, ""},
      {"confirmed at the end of time", kMax, kMax, kMax, true, ""},
      {"negative times", -5, -5, -10, true, ""},
  };
  for (int version = 1; version <= 12; ++version) {
    const RoomVersion& room = Room(version);
    for (const Case& c : cases) {
      SCOPED_TRACE(absl::StrCat(c.name, ", room version ", version));
      std::optional<std::string> why = KeyUnusableForEvent(
          Current(c.valid_until_ts, c.confirmed_ts), room, c.origin_server_ts);
      if (version < 5 || c.usable_from_v5) {
        EXPECT_EQ(why, std::nullopt);
      } else {
        ASSERT_TRUE(why.has_value());
        EXPECT_THAT(*why, HasSubstr("ed25519:cur"));
        EXPECT_THAT(*why, HasSubstr(c.why));
      }
    }
  }
}

TEST(VerifyKeyTest, UsableUntilIsTheLesserOfValidUntilAndSevenDaysAfterConfirmation) {
  EXPECT_EQ(UsableUntil(Current(kNow + 30 * kDay, kNow)), kNow + 7 * kDay);
  EXPECT_EQ(UsableUntil(Current(kNow + kDay, kNow)), kNow + kDay);
  EXPECT_EQ(UsableUntil(Current(kNow + 30 * kDay)), kNow + 30 * kDay);  // pinned
  EXPECT_EQ(UsableUntil(Current(std::nullopt, kNow)), std::nullopt);
  // The confirmation can be given apart from the key (a store's record).
  EXPECT_EQ(UsableUntil(Current(kNow + 30 * kDay), kNow - kDay), kNow + 6 * kDay);
}

TEST(VerifyKeyTest, CapMessageNamesRoomVersion) {
  std::optional<std::string> why =
      KeyUnusableForEvent(Current(kNow, kNow), Room(7), kNow + 1);
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why,
            "key ed25519:cur is valid until 1700000000000, before the event's "
            "origin_server_ts 1700000000001 (room version 7)");
}

// Old keys verify only events sent strictly before expired_ts, in every room
// version; their (absent) valid_until_ts plays no part.
TEST(VerifyKeyTest, OldKeyOnlyBeforeExpiredTs) {
  struct Case {
    int64_t expired_ts;
    int64_t origin_server_ts;
    bool usable;
  };
  const Case cases[] = {
      {kNow, kNow - 1, true},
      {kNow, kNow, true},  // expired at the event, not before it
      {kNow, kNow + 1, false},
      {kNow - 30 * kDay, kNow - 31 * kDay, true},
      {kNow + 30 * kDay, kNow + 29 * kDay, true},  // the 7-day cap is not for old keys
      {0, -1, true},
      {0, 0, true},
      {0, 1, false},
  };
  for (int version = 1; version <= 12; ++version) {
    const RoomVersion& room = Room(version);
    for (const Case& c : cases) {
      SCOPED_TRACE(absl::StrCat("expired_ts ", c.expired_ts, ", event at ",
                                c.origin_server_ts, ", room version ", version));
      std::optional<std::string> why =
          KeyUnusableForEvent(Old(c.expired_ts), room, c.origin_server_ts);
      if (c.usable) {
        EXPECT_EQ(why, std::nullopt);
      } else {
        ASSERT_TRUE(why.has_value());
        EXPECT_EQ(*why, absl::StrCat("key ed25519:old expired at ", c.expired_ts,
                                     ", before the event's origin_server_ts ",
                                     c.origin_server_ts));
      }
    }
  }
}

// A key with both fields is judged as an old key.
TEST(VerifyKeyTest, ExpiredTsWinsOverValidUntilTs) {
  VerifyKey key = Old(kNow);
  key.valid_until_ts = kNow + kDay;
  for (int version : {1, 5, 12}) {
    SCOPED_TRACE(version);
    EXPECT_TRUE(KeyUnusableForEvent(key, Room(version), kNow + 1).has_value());
    EXPECT_EQ(KeyUnusableForEvent(key, Room(version), kNow), std::nullopt);
  }
}

// A banned key verifies nothing: no event in any room version, no request.
TEST(VerifyKeyTest, BannedKeyIsNeverUsable) {
  VerifyKey current = Current(kNow + kDay, kNow);
  current.banned = true;
  VerifyKey old = Old(kNow + kDay);
  old.banned = true;
  for (int version : {1, 4, 5, 12}) {
    SCOPED_TRACE(version);
    EXPECT_EQ(KeyUnusableForEvent(current, Room(version), kNow),
              "key ed25519:cur is banned by the operator");
    EXPECT_EQ(KeyUnusableForEvent(old, Room(version), kNow),
              "key ed25519:old is banned by the operator");
  }
  EXPECT_EQ(KeyUnusableForRequest(current, kNow), "key ed25519:cur is banned by the operator");
}

// Requests are signed now, by current keys only.
TEST(VerifyKeyTest, KeyForRequests) {
  struct Case {
    const char* name;
    VerifyKey key;
    int64_t now;
    const char* why;  // nullptr: usable
  };
  VerifyKey old_and_valid = Old(kNow + kDay);
  old_and_valid.valid_until_ts = kNow + kDay;
  const Case cases[] = {
      {"valid for a day", Current(kNow + kDay), kNow, nullptr},
      {"valid until now", Current(kNow), kNow, nullptr},
      // A pinned key: no fetch, no 7-day cap.
      {"pinned, valid for a year", Current(kNow + 365 * kDay), kNow, nullptr},
      // Fetched: 7 days from the last response listing it.
      {"valid for a year, listed 6 days ago", Current(kNow + 365 * kDay, kNow - 6 * kDay),
       kNow, nullptr},
      {"valid for a year, last listed 8 days ago", Current(kNow + 365 * kDay, kNow - 8 * kDay),
       kNow,
       "key ed25519:cur is valid until 1699913600000 (7 days after the last response listing "
       "it, fetched at 1699308800000; it says 1731536000000), before now (1700000000000)"},
      {"lapsed 1 ms ago", Current(kNow - 1), kNow,
       "key ed25519:cur is valid until 1699999999999, before now "
       "(1700000000000)"},
      {"no valid_until_ts", Current(std::nullopt), kNow,
       "key ed25519:cur has no valid_until_ts"},
      {"old key", Old(kNow + kDay), kNow,
       "key ed25519:old is an old key; old keys cannot sign requests"},
      {"old key with valid_until_ts", old_and_valid, kNow,
       "key ed25519:old is an old key; old keys cannot sign requests"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::optional<std::string> why = KeyUnusableForRequest(c.key, c.now);
    if (c.why == nullptr) {
      EXPECT_EQ(why, std::nullopt);
    } else {
      EXPECT_EQ(why, std::optional<std::string>(c.why));
    }
  }
}

}  // namespace
}  // namespace keyverifier::core
