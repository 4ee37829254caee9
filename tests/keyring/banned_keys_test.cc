// BannedKeys and the BanningKeyRing: which keys are banned, and that every
// way of asking the wrapped keyring marks them.
#include "service/keyring/banned_keys.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "tests/fakes/fake_keyring.h"
#include "tests/testing/server_name.h"

namespace keyverifier::keyring {
namespace {

using ::keyverifier::testing::Name;

core::VerifyKey Key(const std::string& id, char byte) {
  core::VerifyKey k;
  k.key_id = id;
  k.public_key.fill(static_cast<uint8_t>(byte));
  k.valid_until_ts = 1;
  return k;
}

std::string B64(char byte) {
  core::Ed25519PublicKey k;
  k.fill(static_cast<uint8_t>(byte));
  return core::EncodeBase64Unpadded(core::AsStringView(k));
}

TEST(BannedKeysTest, BadEntriesAreRefusedNamingThem) {
  struct Case {
    BannedKeys::Entry entry;
    const char* why;
  };
  const Case cases[] = {
      {{"not a name", "ed25519:a", ""}, "entry 0: server_name"},
      {{"a.example", "rsa:a", ""}, "entry 0: key_id \"rsa:a\" is not an ed25519 key id"},
      {{"a.example", "", ""}, "entry 0: key_id \"\" is not an ed25519 key id"},
      {{"", "", "not base64!"}, "entry 0: public_key"},
      {{"a.example", "ed25519:a", B64('k')}, "either public_key, or server_name and key_id"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.why);
    absl::StatusOr<BannedKeys> b = BannedKeys::Create({c.entry});
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(b.status().message(), c.why)) << b.status();
  }
}

TEST(BannedKeysTest, ByKeyIdOfOneServerOrByPublicKeyAnywhere) {
  absl::StatusOr<BannedKeys> b =
      BannedKeys::Create({{"A.example", "ed25519:a", ""}, {"", "", B64('z')}});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(b->Banned("a.example", Key("ed25519:a", 'q')));  // names are case-blind
  EXPECT_FALSE(b->Banned("b.example", Key("ed25519:a", 'q')));
  EXPECT_FALSE(b->Banned("a.example", Key("ed25519:b", 'q')));
  EXPECT_TRUE(b->Banned("anyone.example", Key("ed25519:x", 'z')));
  EXPECT_TRUE(BannedKeys::Create({})->empty());
}

TEST(BannedKeysTest, LookupsAndBatchesMarkBannedKeys) {
  testing::FakeKeyRing inner;
  KeyResult r;
  r.server_name = "a.example";
  r.verify_keys = {Key("ed25519:a", 'q'), Key("ed25519:b", 'r')};
  r.old_verify_keys = {Key("ed25519:old", 'z')};
  inner.Add(r);
  absl::StatusOr<BannedKeys> banned =
      BannedKeys::Create({{"a.example", "ed25519:a", ""}, {"", "", B64('z')}});
  ASSERT_TRUE(banned.ok());
  BanningKeyRing ring(inner, *banned);
  auto check = [](const KeyResult& got) {
    ASSERT_EQ(got.verify_keys.size(), 2u);
    EXPECT_TRUE(got.verify_keys[0].banned);
    EXPECT_FALSE(got.verify_keys[1].banned);
    ASSERT_EQ(got.old_verify_keys.size(), 1u);
    EXPECT_TRUE(got.old_verify_keys[0].banned);
  };
  absl::StatusOr<KeyResult> one =
      ring.GetKeysAndWait(KeyQuery(Name("a.example")), absl::InfiniteFuture());
  ASSERT_TRUE(one.ok());
  check(*one);
  std::vector<absl::StatusOr<KeyResult>> many;
  ring.GetKeysMany({KeyQuery(Name("a.example")), KeyQuery(Name("b.example"))},
                   absl::InfiniteFuture(),
                   [&](std::vector<absl::StatusOr<KeyResult>> r) { many = std::move(r); });
  ASSERT_EQ(many.size(), 2u);
  ASSERT_TRUE(many[0].ok());
  check(*many[0]);
  EXPECT_TRUE(absl::IsNotFound(many[1].status()));
}

}  // namespace
}  // namespace keyverifier::keyring
