#include "service/core/server_keys.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/signed_json.h"
#include "tests/testing/server_name.h"

namespace keyverifier::core {
namespace {

using ::keyverifier::testing::Name;

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kOrigin[] = "origin.example";
constexpr char kNotary[] = "notary.example";
constexpr int64_t kValidUntil = 1'700'000'000'000;
constexpr int64_t kExpired = 1'600'000'000'000;

Ed25519SigningKey KeyFromByte(char b) {
  absl::StatusOr<Ed25519SigningKey> key =
      Ed25519SigningKey::FromSeed(std::string(kEd25519SeedSize, b));
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

const Ed25519SigningKey& KeyA() {
  static const Ed25519SigningKey* key = new Ed25519SigningKey(KeyFromByte('a'));
  return *key;
}
const Ed25519SigningKey& KeyB() {
  static const Ed25519SigningKey* key = new Ed25519SigningKey(KeyFromByte('b'));
  return *key;
}
const Ed25519SigningKey& KeyOld() {
  static const Ed25519SigningKey* key = new Ed25519SigningKey(KeyFromByte('o'));
  return *key;
}
const Ed25519SigningKey& KeyNotary() {
  static const Ed25519SigningKey* key = new Ed25519SigningKey(KeyFromByte('n'));
  return *key;
}
const Ed25519SigningKey& KeyOther() {
  static const Ed25519SigningKey* key = new Ed25519SigningKey(KeyFromByte('x'));
  return *key;
}

std::string B64(const Ed25519PublicKey& key) {
  return EncodeBase64Unpadded(AsStringView(key));
}

Value Parse(absl::string_view json) {
  absl::StatusOr<Value> v = ParseJson(json);
  EXPECT_TRUE(v.ok()) << json << ": " << v.status();
  return v.ok() ? *std::move(v) : Value();
}

struct Signer {
  std::string server;
  std::string key_id;
  const Ed25519SigningKey* key;
};

// A key response: unsigned fields first, then signatures; tests change either.
struct Response {
  Value body = Value::Object();
  std::vector<Signer> signers;

  Value Signed() const {
    Value v = body;
    for (const Signer& s : signers) {
      absl::Status status = SignJson(&v, s.server, s.key_id, *s.key);
      EXPECT_TRUE(status.ok()) << status;
    }
    return v;
  }
  std::string Text() const { return ToJson(Signed()); }
};

Value KeyEntry(const Ed25519SigningKey& key) {
  Value entry = Value::Object();
  entry.Set("key", Value::String(B64(key.public_key())));
  return entry;
}

// origin.example with current keys ed25519:a and ed25519:b (both signing) and
// old key ed25519:old.
Response GoodResponse(std::string server = kOrigin) {
  Response r;
  r.body.Set("server_name", Value::String(server));
  r.body.Set("valid_until_ts", Value::Integer(kValidUntil));
  Value verify = Value::Object();
  verify.Set("ed25519:a", KeyEntry(KeyA()));
  verify.Set("ed25519:b", KeyEntry(KeyB()));
  r.body.Set("verify_keys", std::move(verify));
  Value old_entry = KeyEntry(KeyOld());
  old_entry.Set("expired_ts", Value::Integer(kExpired));
  Value old = Value::Object();
  old.Set("ed25519:old", std::move(old_entry));
  r.body.Set("old_verify_keys", std::move(old));
  r.signers = {{server, "ed25519:a", &KeyA()}, {server, "ed25519:b", &KeyB()}};
  return r;
}

Value* Path(Value* v, std::initializer_list<absl::string_view> path) {
  for (absl::string_view step : path) {
    v = v->FindMutable(step);
    if (v == nullptr) {
      ADD_FAILURE() << "no " << step;
      return nullptr;
    }
  }
  return v;
}

PinnedNotary Notary() {
  VerifyKey key;
  key.key_id = "ed25519:n";
  key.public_key = KeyNotary().public_key();
  key.valid_until_ts = kValidUntil;
  return PinnedNotary{Name(kNotary), {key}};
}

// --- Valid responses --------------------------------------------------------

TEST(ServerKeysTest, ValidResponseParses) {
  // Pretty-printed, as a server may send it: signatures cover the canonical
  // form, and the text is kept exactly as received.
  const std::string text = absl::StrCat(
      "  ", absl::StrReplaceAll(GoodResponse().Text(), {{",", ",\n    "}}),
      "\n");
  ServerKeyExpectations expect;
  expect.server_name = kOrigin;
  absl::StatusOr<ServerKeys> keys = ParseServerKeys(text, expect);
  ASSERT_TRUE(keys.ok()) << keys.status();

  EXPECT_EQ(keys->server_name, kOrigin);
  EXPECT_EQ(keys->valid_until_ts, kValidUntil);
  EXPECT_EQ(keys->raw_json, text);
  EXPECT_THAT(keys->notaries, IsEmpty());

  VerifyKey a{"ed25519:a", KeyA().public_key(), kValidUntil, std::nullopt};
  VerifyKey b{"ed25519:b", KeyB().public_key(), kValidUntil, std::nullopt};
  VerifyKey old{"ed25519:old", KeyOld().public_key(), std::nullopt, kExpired};
  EXPECT_THAT(keys->verify_keys, ElementsAre(a, b));
  EXPECT_THAT(keys->old_verify_keys, ElementsAre(old));
  EXPECT_THAT(keys->AllKeys(), ElementsAre(a, b, old));
}

TEST(ServerKeysTest, ParsedValueKeepsCanonicalJson) {
  const Value signed_response = GoodResponse().Signed();
  absl::StatusOr<ServerKeys> keys = ParseServerKeys(signed_response);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->raw_json, ToJson(signed_response));
  EXPECT_EQ(keys->verify_keys.size(), 2u);
}

TEST(ServerKeysTest, MinimalResponse) {
  Response r;
  r.body = Parse(R"({"server_name":"origin.example","valid_until_ts":0})");
  Value verify = Value::Object();
  verify.Set("ed25519:a", KeyEntry(KeyA()));
  r.body.Set("verify_keys", std::move(verify));
  r.signers = {{kOrigin, "ed25519:a", &KeyA()}};
  absl::StatusOr<ServerKeys> keys = ParseServerKeys(r.Text());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->valid_until_ts, 0);
  EXPECT_EQ(keys->verify_keys.size(), 1u);
  EXPECT_THAT(keys->old_verify_keys, IsEmpty());
}

TEST(ServerKeysTest, KeysOfOtherAlgorithmsAreIgnored) {
  Response r = GoodResponse();
  // Whatever shape they have: only ed25519 is understood.
  Path(&r.body, {"verify_keys"})->Set("curve25519:x", Value::String("junk"));
  Path(&r.body, {"verify_keys"})->Set("rsa:1", Parse(R"({"key":"!!"})"));
  Path(&r.body, {"verify_keys"})->Set("ed25519x:1", Value::Integer(5));
  Path(&r.body, {"old_verify_keys"})->Set("curve25519:y", Value());
  // Signatures with keys or algorithms nobody listed are not checked either.
  r.signers.push_back({kOrigin, "ed25519:unlisted", &KeyOther()});
  r.signers.push_back({kOrigin, "curve25519:x", &KeyOther()});
  absl::StatusOr<ServerKeys> keys = ParseServerKeys(r.Text());
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->verify_keys.size(), 2u);
  EXPECT_EQ(keys->verify_keys[0].key_id, "ed25519:a");
  EXPECT_EQ(keys->verify_keys[1].key_id, "ed25519:b");
  ASSERT_EQ(keys->old_verify_keys.size(), 1u);
  EXPECT_EQ(keys->old_verify_keys[0].key_id, "ed25519:old");
}

TEST(ServerKeysTest, PaddedKeyIsAccepted) {
  Response r = GoodResponse();
  Value* key = Path(&r.body, {"verify_keys", "ed25519:a", "key"});
  *key = Value::String(absl::StrCat(key->string_value(), "="));
  absl::StatusOr<ServerKeys> keys = ParseServerKeys(r.Text());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->verify_keys[0].public_key, KeyA().public_key());
}

// --- Invalid responses ------------------------------------------------------

struct BadCase {
  const char* name;
  std::function<void(Response&)> change;
  std::vector<std::string> message_has;
};

std::vector<BadCase> BadCases() {
  const std::string a_key = B64(KeyA().public_key());
  return {
      {"server_name not a valid server name",
       [](Response& r) {
         r.body.Set("server_name", Value::String("bad name"));
         r.signers = {{"bad name", "ed25519:a", &KeyA()},
                      {"bad name", "ed25519:b", &KeyB()}};
       },
       {"bad name"}},
      {"server_name missing",
       [](Response& r) { r.body.Erase("server_name"); },
       {"server_name is missing"}},
      {"server_name not a string",
       [](Response& r) { r.body.Set("server_name", Value::Integer(1)); },
       {"server_name is missing or not a string"}},
      {"key id with a dash",
       [a_key](Response& r) {
         Path(&r.body, {"verify_keys"})
             ->Set("ed25519:a-1", Parse(absl::StrCat(R"({"key":")", a_key,
                                                    "\"}")));
       },
       {kOrigin, "verify_keys", "\"ed25519:a-1\"", "ed25519:[a-zA-Z0-9_]+"}},
      {"key id without a version",
       [a_key](Response& r) {
         Path(&r.body, {"verify_keys"})
             ->Set("ed25519:", Parse(absl::StrCat(R"({"key":")", a_key, "\"}")));
       },
       {kOrigin, "\"ed25519:\""}},
      {"key id with no colon",
       [a_key](Response& r) {
         Path(&r.body, {"verify_keys"})
             ->Set("ed25519", Parse(absl::StrCat(R"({"key":")", a_key, "\"}")));
       },
       {kOrigin, "\"ed25519\""}},
      {"old key id with a dot",
       [a_key](Response& r) {
         Path(&r.body, {"old_verify_keys"})
             ->Set("ed25519:o.1",
                   Parse(absl::StrCat(R"({"key":")", a_key,
                                      R"(","expired_ts":1})")));
       },
       {kOrigin, "old_verify_keys", "\"ed25519:o.1\""}},
      {"key of 31 bytes",
       [](Response& r) {
         *Path(&r.body, {"verify_keys", "ed25519:a", "key"}) =
             Value::String(EncodeBase64Unpadded(std::string(31, 'k')));
       },
       {kOrigin, "ed25519:a", "31 bytes"}},
      {"key of 33 bytes",
       [](Response& r) {
         *Path(&r.body, {"verify_keys", "ed25519:b", "key"}) =
             Value::String(EncodeBase64Unpadded(std::string(33, 'k')));
       },
       {kOrigin, "ed25519:b", "33 bytes"}},
      {"old key of 0 bytes",
       [](Response& r) {
         *Path(&r.body, {"old_verify_keys", "ed25519:old", "key"}) =
             Value::String("");
       },
       {kOrigin, "ed25519:old", "0 bytes"}},
      {"key not base64",
       [](Response& r) {
         *Path(&r.body, {"verify_keys", "ed25519:a", "key"}) =
             Value::String("not*base64*at*all*not*base64*at*all*not*base");
       },
       {kOrigin, "verify_keys.ed25519:a.key"}},
      {"key URL-safe base64",
       [](Response& r) {
         // 32 bytes of 0xfb encode with '+' and '/'; the URL-safe form is
         // not what the spec uses for keys.
         *Path(&r.body, {"verify_keys", "ed25519:a", "key"}) = Value::String(
             EncodeBase64Unpadded(std::string(32, '\xfb'),
                                  Base64Alphabet::kUrlSafe));
       },
       {kOrigin, "verify_keys.ed25519:a.key"}},
      {"key missing",
       [](Response& r) {
         Path(&r.body, {"verify_keys", "ed25519:a"})->Erase("key");
       },
       {kOrigin, "verify_keys.ed25519:a.key is missing or not a string"}},
      {"key not a string",
       [](Response& r) {
         *Path(&r.body, {"verify_keys", "ed25519:a", "key"}) = Value::Integer(1);
       },
       {kOrigin, "verify_keys.ed25519:a.key is missing or not a string"}},
      {"key entry not an object",
       [a_key](Response& r) {
         *Path(&r.body, {"verify_keys", "ed25519:a"}) = Value::String(a_key);
       },
       {kOrigin, "verify_keys.ed25519:a is not an object"}},
      {"a verify key did not sign",
       [](Response& r) { r.signers.pop_back(); },
       {kOrigin, "verify key ed25519:b did not sign the response"}},
      {"no signatures at all",
       [](Response& r) { r.signers.clear(); },
       {kOrigin, "verify key ed25519:a did not sign the response"}},
      {"signed by the other server",
       [](Response& r) {
         r.signers = {{"elsewhere.example", "ed25519:a", &KeyA()},
                      {"elsewhere.example", "ed25519:b", &KeyB()}};
       },
       {kOrigin, "verify key ed25519:a did not sign"}},
      {"bad self-signature",
       [](Response& r) { r.signers[1].key = &KeyA(); },
       {kOrigin, "signature of origin.example with ed25519:b does not verify"}},
      {"signed by the old key only",
       [](Response& r) {
         r.signers = {{kOrigin, "ed25519:old", &KeyOld()}};
       },
       {kOrigin, "verify key ed25519:a did not sign"}},
      {"verify_keys missing",
       [](Response& r) { r.body.Erase("verify_keys"); },
       {kOrigin, "verify_keys is missing"}},
      {"verify_keys not an object",
       [](Response& r) { r.body.Set("verify_keys", Value::Array()); },
       {kOrigin, "verify_keys is not an object"}},
      {"old_verify_keys not an object",
       [](Response& r) { r.body.Set("old_verify_keys", Value::String("x")); },
       {kOrigin, "old_verify_keys is not an object"}},
      {"verify_keys without an ed25519 key",
       [](Response& r) {
         r.body.Set("verify_keys", Parse(R"({"curve25519:a":{"key":"AAAA"}})"));
         r.signers.clear();
       },
       {kOrigin, "verify_keys has no ed25519 key"}},
      {"verify_keys empty, old keys unsigned",
       [](Response& r) {
         r.body.Set("verify_keys", Value::Object());
         r.signers.clear();
       },
       {kOrigin, "verify_keys has no ed25519 key"}},
      {"valid_until_ts missing",
       [](Response& r) { r.body.Erase("valid_until_ts"); },
       {kOrigin, "valid_until_ts is missing"}},
      {"valid_until_ts a string",
       [](Response& r) { r.body.Set("valid_until_ts", Value::String("1")); },
       {kOrigin, "valid_until_ts is not an integer"}},
      {"valid_until_ts a fraction",
       [](Response& r) {
         r.body.Set("valid_until_ts", *Value::NumberFromLexeme("1.5"));
         r.signers.clear();  // not signable; refused before signatures anyway
       },
       {kOrigin, "valid_until_ts is not an integer"}},
      {"valid_until_ts beyond 2^53",
       [](Response& r) {
         r.body.Set("valid_until_ts", Value::Integer(kMaxSafeInteger + 1));
         r.signers.clear();
       },
       {kOrigin, "valid_until_ts is not an integer"}},
      {"old key without expired_ts",
       [](Response& r) {
         Path(&r.body, {"old_verify_keys", "ed25519:old"})->Erase("expired_ts");
       },
       {kOrigin, "old_verify_keys.ed25519:old.expired_ts is missing"}},
      {"old key with a string expired_ts",
       [](Response& r) {
         Path(&r.body, {"old_verify_keys", "ed25519:old"})
             ->Set("expired_ts", Value::String("1"));
       },
       {kOrigin, "old_verify_keys.ed25519:old.expired_ts is not an integer"}},
  };
}

TEST(ServerKeysTest, InvalidResponsesAreRefused) {
  for (const BadCase& c : BadCases()) {
    SCOPED_TRACE(c.name);
    Response r = GoodResponse();
    c.change(r);
    absl::StatusOr<ServerKeys> keys = ParseServerKeys(r.Text());
    ASSERT_FALSE(keys.ok());
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
    for (const std::string& part : c.message_has) {
      EXPECT_THAT(keys.status().message(), HasSubstr(part));
    }
    // The parsed-Value entry point agrees.
    absl::StatusOr<ServerKeys> from_value = ParseServerKeys(r.Signed());
    ASSERT_FALSE(from_value.ok());
    EXPECT_EQ(from_value.status(), keys.status());
  }
}

// One key id, one key: a response listing a key id as current and as old
// with two different keys is refused; with the same key it parses (the
// store makes it one old key).
TEST(ServerKeysTest, OneKeyIdWithTwoKeysIsRefused) {
  Response two = GoodResponse();
  Value old_entry = KeyEntry(KeyOther());
  old_entry.Set("expired_ts", Value::Integer(kExpired));
  Path(&two.body, {"old_verify_keys"})->Set("ed25519:a", std::move(old_entry));
  absl::StatusOr<ServerKeys> keys = ParseServerKeys(two.Text());
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(keys.status().message(),
              HasSubstr("key id ed25519:a is given two different keys (in verify_keys and "
                        "old_verify_keys)"));

  Response same = GoodResponse();
  Value same_entry = KeyEntry(KeyA());
  same_entry.Set("expired_ts", Value::Integer(kExpired));
  Path(&same.body, {"old_verify_keys"})->Set("ed25519:a", std::move(same_entry));
  keys = ParseServerKeys(same.Text());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->old_verify_keys.size(), 2u);
}

// A response listing more keys than allowed (padding with old keys, say) is
// refused before its keys are parsed, naming the count and the limit.
TEST(ServerKeysTest, TooManyKeysAreRefused) {
  Response padded = GoodResponse();
  Value* old = Path(&padded.body, {"old_verify_keys"});
  for (int i = 0; i < 254; ++i) {  // 2 current + 1 old + 254 = 257
    Value entry = KeyEntry(KeyOld());
    entry.Set("expired_ts", Value::Integer(kExpired));
    old->Set(absl::StrCat("ed25519:pad", i), std::move(entry));
  }
  const std::string text = padded.Text();
  absl::StatusOr<ServerKeys> keys = ParseServerKeys(text);
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(keys.status().message(),
              HasSubstr("lists 257 keys (current and old); the limit is 256"));
  ServerKeyExpectations more;
  more.max_keys = 300;
  keys = ParseServerKeys(text, more);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->old_verify_keys.size(), 255u);
}

TEST(ServerKeysTest, ChangedAfterSigningDoesNotVerify) {
  Value v = GoodResponse().Signed();
  v.Set("valid_until_ts", Value::Integer(kValidUntil + 1));
  absl::StatusOr<ServerKeys> keys = ParseServerKeys(ToJson(v));
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().message(),
            "key response for origin.example: signature of origin.example "
            "with ed25519:a does not verify");
}

TEST(ServerKeysTest, MalformedSelfSignature) {
  for (const char* sig : {"not base64!", "AAAA"}) {
    SCOPED_TRACE(sig);
    Value v = GoodResponse().Signed();
    *Path(&v, {"signatures", kOrigin, "ed25519:b"}) = Value::String(sig);
    absl::StatusOr<ServerKeys> keys = ParseServerKeys(ToJson(v));
    ASSERT_FALSE(keys.ok());
    EXPECT_THAT(keys.status().message(),
                AllOf(HasSubstr(kOrigin), HasSubstr("ed25519:b")));
  }
}

TEST(ServerKeysTest, WrongServerName) {
  ServerKeyExpectations expect;
  expect.server_name = "expected-server.example";
  absl::StatusOr<ServerKeys> keys =
      ParseServerKeys(GoodResponse().Text(), expect);
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().message(),
            "key response for expected-server.example: server_name is "
            "\"origin.example\", expected \"expected-server.example\"");
}

TEST(ServerKeysTest, UnusableJsonNamesTheExpectedServer) {
  ServerKeyExpectations expect;
  expect.server_name = "a-rather-long-server-name.example";
  for (const char* text : {"", "{", "[]", "\"keys\"", R"({"a":1,"a":2})"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<ServerKeys> keys = ParseServerKeys(text, expect);
    ASSERT_FALSE(keys.ok());
    EXPECT_THAT(keys.status().message(),
                HasSubstr("key response for a-rather-long-server-name.example: "));
  }
}

// --- Notary counter-signatures ----------------------------------------------

TEST(ServerKeysTest, NotaryCounterSignature) {
  struct Case {
    const char* name;
    std::vector<Signer> notary_signers;
    const char* error;  // nullptr: valid
  };
  const Case cases[] = {
      {"signed with the pinned key", {{kNotary, "ed25519:n", &KeyNotary()}},
       nullptr},
      {"pinned key and an unknown one",
       {{kNotary, "ed25519:n", &KeyNotary()},
        {kNotary, "ed25519:m", &KeyOther()}},
       nullptr},
      {"missing", {},
       "key response for origin.example: notary notary.example: "
       "missing_signature: no signature from notary.example"},
      {"signed by another server",
       {{"other-notary.example", "ed25519:n", &KeyNotary()}},
       "key response for origin.example: notary notary.example: "
       "missing_signature: no signature from notary.example"},
      {"signed with a key that is not pinned",
       {{kNotary, "ed25519:m", &KeyNotary()}},
       "key response for origin.example: notary notary.example: unknown_key: "
       "notary.example signed with unknown key(s) ed25519:m"},
      {"pinned key id, wrong key", {{kNotary, "ed25519:n", &KeyOther()}},
       "key response for origin.example: notary notary.example: "
       "bad_signature: signature of notary.example with ed25519:n does not "
       "verify"},
  };
  const PinnedNotary notary = Notary();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Response r = GoodResponse();
    for (const Signer& s : c.notary_signers) r.signers.push_back(s);
    ServerKeyExpectations expect;
    expect.server_name = kOrigin;
    expect.notary = &notary;
    absl::StatusOr<ServerKeys> keys = ParseServerKeys(r.Text(), expect);
    if (c.error == nullptr) {
      ASSERT_TRUE(keys.ok()) << keys.status();
      EXPECT_THAT(keys->notaries, ElementsAre(kNotary));
      EXPECT_EQ(keys->verify_keys.size(), 2u);
    } else {
      ASSERT_FALSE(keys.ok());
      EXPECT_EQ(keys.status().message(), c.error);
    }
  }
}

TEST(ServerKeysTest, NotaryMalformedSignature) {
  const PinnedNotary notary = Notary();
  Response r = GoodResponse();
  r.signers.push_back({kNotary, "ed25519:n", &KeyNotary()});
  Value v = r.Signed();
  *Path(&v, {"signatures", kNotary, "ed25519:n"}) = Value::String("AAAA");
  ServerKeyExpectations expect;
  expect.notary = &notary;
  absl::StatusOr<ServerKeys> keys = ParseServerKeys(ToJson(v), expect);
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(keys.status().message(),
              AllOf(HasSubstr("origin.example"), HasSubstr("notary.example"),
                    HasSubstr("malformed_signature"), HasSubstr("ed25519:n")));
}

// The notary's signature does not replace the origin's own.
TEST(ServerKeysTest, NotarySignatureDoesNotReplaceSelfSignature) {
  const PinnedNotary notary = Notary();
  Response r = GoodResponse();
  r.signers = {{kNotary, "ed25519:n", &KeyNotary()}};
  ServerKeyExpectations expect;
  expect.notary = &notary;
  absl::StatusOr<ServerKeys> keys = ParseServerKeys(r.Text(), expect);
  ASSERT_FALSE(keys.ok());
  EXPECT_THAT(keys.status().message(),
              HasSubstr("verify key ed25519:a did not sign"));
}

// --- Notary answers ---------------------------------------------------------

TEST(ServerKeysTest, NotaryResponseKeepsGoodEntries) {
  auto entry = [](const std::string& server, bool origin_ok, bool notary_ok) {
    Response r = GoodResponse(server);
    if (!origin_ok) r.signers[0].key = &KeyB();
    if (notary_ok) r.signers.push_back({kNotary, "ed25519:n", &KeyNotary()});
    return r.Signed();
  };
  std::vector<Value> entries = {
      entry("one.example", true, true),
      entry("two.example", false, true),    // bad self-signature
      entry("three.example", true, false),  // no notary signature
      Value::String("not an entry"),
      entry("five.example", true, true),
  };
  Value answer = Value::Object();
  answer.Set("server_keys", Value::Array(entries));
  // Pretty-printed answer; each entry's raw_json is its canonical form.
  const std::string text =
      absl::StrReplaceAll(ToJson(answer), {{",", ",\n  "}});

  absl::StatusOr<std::vector<absl::StatusOr<ServerKeys>>> results =
      ParseNotaryResponse(text, Notary());
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 5u);

  const auto& one = (*results)[0];
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->server_name, "one.example");
  EXPECT_EQ(one->raw_json, ToJson(entries[0]));
  EXPECT_THAT(one->notaries, ElementsAre(kNotary));

  ASSERT_FALSE((*results)[1].ok());
  EXPECT_EQ((*results)[1].status().message(),
            "key response for two.example: signature of two.example with "
            "ed25519:a does not verify");

  ASSERT_FALSE((*results)[2].ok());
  EXPECT_EQ((*results)[2].status().message(),
            "key response for three.example: notary notary.example: "
            "missing_signature: no signature from notary.example");

  ASSERT_FALSE((*results)[3].ok());
  EXPECT_THAT((*results)[3].status().message(), HasSubstr("not a JSON object"));

  const auto& five = (*results)[4];
  ASSERT_TRUE(five.ok()) << five.status();
  EXPECT_EQ(five->server_name, "five.example");
  EXPECT_EQ(five->raw_json, ToJson(entries[4]));
}

TEST(ServerKeysTest, NotaryResponseEmptyList) {
  absl::StatusOr<std::vector<absl::StatusOr<ServerKeys>>> results =
      ParseNotaryResponse(R"({"server_keys":[]})", Notary());
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_THAT(*results, IsEmpty());
}

TEST(ServerKeysTest, NotaryResponseUnusableEnvelope) {
  struct Case {
    const char* text;
    const char* error_has;
  };
  const Case cases[] = {
      {"", "notary notary.example answer: "},
      {"{", "notary notary.example answer: "},
      {"[]", "notary notary.example answer: server_keys is missing or not an "
             "array"},
      {"{}", "notary notary.example answer: server_keys is missing or not an "
             "array"},
      {R"({"server_keys":{}})", "server_keys is missing or not an array"},
      {R"({"server_keys":null})", "server_keys is missing or not an array"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<std::vector<absl::StatusOr<ServerKeys>>> results =
        ParseNotaryResponse(c.text, Notary());
    ASSERT_FALSE(results.ok());
    EXPECT_THAT(results.status().message(), HasSubstr(c.error_has));
  }
}

TEST(TlsFingerprintsTest, ReadsTheDigestsAndSkipsWhatIsNotOne) {
  const std::string a(32, 'a'), b(32, 'b');
  const std::string json = absl::StrCat(
      R"({"server_name":"x.org","tls_fingerprints":[{"sha256":")", EncodeBase64Unpadded(a),
      R"("},{"sha256":5},{"md5":"AAAA"},"junk",{"sha256":"AAAA"},{"sha256":")",
      EncodeBase64Unpadded(b), R"(="}]})");
  EXPECT_EQ(TlsFingerprints(json), (std::vector<std::string>{a, b}));
  EXPECT_TRUE(TlsFingerprints(R"({"server_name":"x.org"})").empty());
  EXPECT_TRUE(TlsFingerprints("not json").empty());
  EXPECT_TRUE(TlsFingerprints(R"({"tls_fingerprints":{}})").empty());
}

}  // namespace
}  // namespace keyverifier::core
