#include "service/core/signed_json.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"

namespace keyverifier::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Matrix spec appendices, "Cryptographic Test Vectors": seed, server name, key
// id, and the signatures of {} and {"one":1,"two":"Two"}.
constexpr char kSpecSeed[] = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
constexpr char kServer[] = "domain";
constexpr char kKeyId[] = "ed25519:1";
constexpr char kSigEmpty[] =
    "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGY"
    "ZzuHGZKM5ZAQ";
constexpr char kSigOneTwo[] =
    "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13E"
    "IMJpvhJI+6Bw";

Ed25519SigningKey SpecKey() {
  absl::StatusOr<std::string> seed = DecodeBase64(kSpecSeed);
  EXPECT_TRUE(seed.ok()) << seed.status();
  absl::StatusOr<Ed25519SigningKey> key = Ed25519SigningKey::FromSeed(*seed);
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

VerifyKey MakeVerifyKey(std::string key_id, const Ed25519PublicKey& public_key) {
  VerifyKey key;
  key.key_id = std::move(key_id);
  key.public_key = public_key;
  return key;
}

VerifyKey SpecVerifyKey() { return MakeVerifyKey(kKeyId, SpecKey().public_key()); }

Value Parse(absl::string_view json) {
  absl::StatusOr<Value> v = ParseJson(json);
  EXPECT_TRUE(v.ok()) << json << ": " << v.status();
  return v.ok() ? *std::move(v) : Value();
}

const std::string& SignatureIn(const Value& object, absl::string_view server,
                               absl::string_view key_id) {
  static const std::string kNone = "<none>";
  const Value* sigs = object.Find("signatures");
  const Value* mine = sigs ? sigs->Find(server) : nullptr;
  const Value* sig = mine ? mine->Find(key_id) : nullptr;
  return sig && sig->is_string() ? sig->string_value() : kNone;
}

// --- The spec's test vectors ------------------------------------------------

TEST(SignedJsonTest, SpecJsonSigningVectors) {
  struct Case {
    const char* input;
    const char* signing_bytes;
    const char* signature;
    const char* signed_json;
  };
  const Case cases[] = {
      {"{}", "{}", kSigEmpty,
       "{\"signatures\":{\"domain\":{\"ed25519:1\":\"K8280/U9SSy9IVtjBuVeLr+"
       "HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ\"}}}"},
      {R"({"one": 1, "two": "Two"})", R"({"one":1,"two":"Two"})", kSigOneTwo,
       "{\"one\":1,\"signatures\":{\"domain\":{\"ed25519:1\":\"KqmLSbO39/"
       "Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/"
       "fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw\"}},\"two\":\"Two\"}"},
  };
  const Ed25519SigningKey key = SpecKey();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input);
    Value object = Parse(c.input);
    absl::StatusOr<std::string> bytes = SigningBytes(object);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(*bytes, c.signing_bytes);

    ASSERT_TRUE(SignJson(&object, kServer, kKeyId, key).ok());
    EXPECT_EQ(SignatureIn(object, kServer, kKeyId), c.signature);
    EXPECT_EQ(ToJson(object), c.signed_json);

    absl::StatusOr<SignatureCheck> check =
        VerifySignedJson(object, kServer, {SpecVerifyKey()});
    ASSERT_TRUE(check.ok()) << check.status();
    EXPECT_TRUE(check->ok()) << check->message;
    EXPECT_EQ(check->reason, Reason::kOk);
    EXPECT_THAT(check->key_ids_verified, ElementsAre(kKeyId));

    // The signed JSON, parsed afresh, verifies too.
    absl::StatusOr<SignatureCheck> reparsed =
        VerifySignedJson(Parse(c.signed_json), kServer, {SpecVerifyKey()});
    ASSERT_TRUE(reparsed.ok()) << reparsed.status();
    EXPECT_TRUE(reparsed->ok()) << reparsed->message;
  }
}

// The example object of the spec's "Signing Details" section.
constexpr char kSigningDetailsExample[] = R"({
   "name": "example.org",
   "signing_keys": {
     "ed25519:1": "XSl0kuyvrXNj6A+7/tkrB9sxSbRi08Of5uRhxOqZtEQ"
   },
   "unsigned": {
      "age_ts": 922834800000
   },
   "signatures": {
      "example.org": {
         "ed25519:1": "s76RUgajp8w172am0zQb/iPTHsRnb4SkrzGoeCOSFfcBY2V/1c8QfrmdXHpvnc2jK5BD1WiJIxiMW95fMjK7Bw"
      }
   }
})";

TEST(SignedJsonTest, SigningDetailsExample) {
  Value object = Parse(kSigningDetailsExample);
  absl::StatusOr<std::string> bytes = SigningBytes(object);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes,
            R"({"name":"example.org","signing_keys":{"ed25519:1":)"
            R"("XSl0kuyvrXNj6A+7/tkrB9sxSbRi08Of5uRhxOqZtEQ"}})");

  // The example's signature is illustrative: it does not verify under the key
  // the object lists (checked independently with OpenSSL as well).
  absl::StatusOr<std::string> listed =
      DecodeBase64("XSl0kuyvrXNj6A+7/tkrB9sxSbRi08Of5uRhxOqZtEQ");
  ASSERT_TRUE(listed.ok());
  absl::StatusOr<Ed25519PublicKey> listed_key =
      Ed25519PublicKeyFromBytes(*listed, "listed key");
  ASSERT_TRUE(listed_key.ok());
  absl::StatusOr<SignatureCheck> check = VerifySignedJson(
      object, "example.org", {MakeVerifyKey("ed25519:1", *listed_key)});
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->reason, Reason::kBadSignature);

  // Re-signed with the spec key, it verifies; `unsigned` survives signing and
  // is not covered, so changing it keeps the signature valid.
  ASSERT_TRUE(SignJson(&object, "example.org", "ed25519:1", SpecKey()).ok());
  ASSERT_NE(object.Find("unsigned"), nullptr);
  EXPECT_EQ(ToJson(*object.Find("unsigned")), R"({"age_ts":922834800000})");
  object.FindMutable("unsigned")->Set("age_ts", Value::Integer(1));
  check = VerifySignedJson(object, "example.org", {SpecVerifyKey()});
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << check->message;
}

// --- Verdicts ---------------------------------------------------------------

struct VerdictCase {
  const char* name;
  std::string json;
  Reason reason;
  std::vector<std::string> verified;  // key ids, when ok
};

// {"one":1,"two":"Two"} with `signatures` (and anything else) as given.
std::string OneTwo(absl::string_view signatures, absl::string_view extra = "") {
  return absl::StrCat(R"({"one":1,"two":"Two")", extra,
                      signatures.empty() ? "" : R"(,"signatures":)", signatures,
                      "}");
}
std::string Sigs(absl::string_view entries) {
  return absl::StrCat(R"({"domain":{)", entries, "}}");
}
std::string Sig(absl::string_view key_id, absl::string_view sig) {
  return absl::StrCat("\"", key_id, "\":\"", sig, "\"");
}

TEST(SignedJsonTest, Verdicts) {
  const std::string good = Sig(kKeyId, kSigOneTwo);
  const std::string other_signer =
      absl::StrCat(R"("other.example":{"ed25519:x":")", kSigEmpty, "\"}");
  std::string flipped = kSigOneTwo;
  flipped[0] = 'L';
  const std::string sig63 = std::string(kSigOneTwo).substr(0, 84);  // 63 bytes
  const std::string sig65 = std::string(kSigOneTwo) + "A";          // 65 bytes

  const VerdictCase cases[] = {
      {"valid", OneTwo(Sigs(good)), Reason::kOk, {kKeyId}},
      {"padded signature", OneTwo(Sigs(Sig(kKeyId, absl::StrCat(kSigOneTwo, "==")))),
       Reason::kOk, {kKeyId}},
      {"no signatures member", OneTwo(""), Reason::kMissingSignature, {}},
      {"signatures not an object", OneTwo("[]"), Reason::kMissingSignature, {}},
      {"signatures empty", OneTwo("{}"), Reason::kMissingSignature, {}},
      {"no entry for the server",
       OneTwo(absl::StrCat("{", other_signer, "}")), Reason::kMissingSignature,
       {}},
      {"server names are case-sensitive",
       OneTwo(absl::StrCat(R"({"Domain":{)", good, "}}")),
       Reason::kMissingSignature, {}},
      {"entry not an object", OneTwo(R"({"domain":"x"})"),
       Reason::kMissingSignature, {}},
      {"entry empty", OneTwo(R"({"domain":{}})"), Reason::kMissingSignature, {}},
      {"only other algorithms are ignored",
       OneTwo(Sigs(absl::StrCat(Sig("curve25519:1", kSigOneTwo), ",",
                                R"("foo:1":5,"ed25519x:1":null)"))),
       Reason::kMissingSignature, {}},
      {"unknown key id", OneTwo(Sigs(Sig("ed25519:2", kSigOneTwo))),
       Reason::kUnknownKey, {}},
      {"signature of a different object", OneTwo(Sigs(Sig(kKeyId, kSigEmpty))),
       Reason::kBadSignature, {}},
      {"flipped signature", OneTwo(Sigs(Sig(kKeyId, flipped))),
       Reason::kBadSignature, {}},
      {"not base64", OneTwo(Sigs(Sig(kKeyId, "not base64!"))),
       Reason::kMalformedSignature, {}},
      {"63-byte signature", OneTwo(Sigs(Sig(kKeyId, sig63))),
       Reason::kMalformedSignature, {}},
      {"65-byte signature", OneTwo(Sigs(Sig(kKeyId, sig65))),
       Reason::kMalformedSignature, {}},
      {"empty signature", OneTwo(Sigs(Sig(kKeyId, ""))),
       Reason::kMalformedSignature, {}},
      {"URL-safe alphabet", OneTwo(Sigs(Sig(kKeyId, "KqmL-_"))),
       Reason::kMalformedSignature, {}},
      {"signature not a string", OneTwo(Sigs(R"("ed25519:1":123)")),
       Reason::kMalformedSignature, {}},
      {"tampered field",
       absl::StrCat(R"({"one":2,"two":"Two","signatures":)", Sigs(good), "}"),
       Reason::kBadSignature, {}},
      {"added field", OneTwo(Sigs(good), R"(,"three":3)"),
       Reason::kBadSignature, {}},
      {"removed field",
       absl::StrCat(R"({"one":1,"signatures":)", Sigs(good), "}"),
       Reason::kBadSignature, {}},
      // Neither `unsigned` nor `signatures` is covered by the signature.
      {"unsigned added", OneTwo(Sigs(good), R"(,"unsigned":{"age":5})"),
       Reason::kOk, {kKeyId}},
      {"unsigned of any type", OneTwo(Sigs(good), R"(,"unsigned":[1,2])"),
       Reason::kOk, {kKeyId}},
      {"another server's signature added",
       OneTwo(absl::StrCat(R"({"domain":{)", good, "},", other_signer, "}")),
       Reason::kOk, {kKeyId}},
      {"other algorithm added beside",
       OneTwo(Sigs(absl::StrCat(good, ",", Sig("curve25519:1", "junk")))),
       Reason::kOk, {kKeyId}},
      {"unknown key added beside",
       OneTwo(Sigs(absl::StrCat(good, ",", Sig("ed25519:zzz", "junk")))),
       Reason::kOk, {kKeyId}},
  };
  const std::vector<VerifyKey> keys = {SpecVerifyKey()};
  for (const VerdictCase& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<SignatureCheck> check =
        VerifySignedJson(Parse(c.json), kServer, keys);
    ASSERT_TRUE(check.ok()) << check.status();
    EXPECT_EQ(ReasonName(check->reason), ReasonName(c.reason))
        << c.json << "\n" << check->message;
    EXPECT_EQ(check->ok(), c.reason == Reason::kOk);
    EXPECT_EQ(check->key_ids_verified, c.verified);
    if (!check->ok()) {
      EXPECT_THAT(check->message, HasSubstr(kServer));
    }
  }
}

TEST(SignedJsonTest, OnlyTopLevelSignaturesAndUnsignedAreLeftOut) {
  Value object = Parse(
      R"({"content":{"signatures":{"a":1},"unsigned":{"b":2}},"x":1})");
  ASSERT_TRUE(SignJson(&object, kServer, kKeyId, SpecKey()).ok());
  absl::StatusOr<std::string> bytes = SigningBytes(object);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes,
            R"({"content":{"signatures":{"a":1},"unsigned":{"b":2}},"x":1})");
  for (const char* nested : {"signatures", "unsigned"}) {
    Value changed = object;
    changed.FindMutable("content")->Set(nested, Value::Object());
    absl::StatusOr<SignatureCheck> check =
        VerifySignedJson(changed, kServer, {SpecVerifyKey()});
    ASSERT_TRUE(check.ok());
    EXPECT_EQ(check->reason, Reason::kBadSignature) << nested;
  }
  absl::StatusOr<SignatureCheck> check =
      VerifySignedJson(object, kServer, {SpecVerifyKey()});
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->ok()) << check->message;
}

TEST(SignedJsonTest, TwoKeysEveryUsableSignatureMustVerify) {
  const Ed25519PublicKey pk = SpecKey().public_key();
  // ed25519:2 is the same key under another id: its signature of this object
  // is kSigOneTwo as well.
  const std::vector<VerifyKey> keys = {MakeVerifyKey("ed25519:1", pk),
                                       MakeVerifyKey("ed25519:2", pk)};
  absl::StatusOr<SignatureCheck> both = VerifySignedJson(
      Parse(OneTwo(Sigs(absl::StrCat(Sig("ed25519:1", kSigOneTwo), ",",
                                     Sig("ed25519:2", kSigOneTwo))))),
      kServer, keys);
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(both->ok()) << both->message;
  EXPECT_THAT(both->key_ids_verified, ElementsAre("ed25519:1", "ed25519:2"));

  for (const auto& [bad_id, good_id] :
       {std::pair{"ed25519:1", "ed25519:2"}, {"ed25519:2", "ed25519:1"}}) {
    absl::StatusOr<SignatureCheck> one_bad = VerifySignedJson(
        Parse(OneTwo(Sigs(absl::StrCat(Sig(good_id, kSigOneTwo), ",",
                                       Sig(bad_id, kSigEmpty))))),
        kServer, keys);
    ASSERT_TRUE(one_bad.ok());
    EXPECT_EQ(one_bad->reason, Reason::kBadSignature) << bad_id;
    EXPECT_FALSE(one_bad->ok());
    EXPECT_EQ(one_bad->message,
              absl::StrCat("signature of domain with ", bad_id,
                           " does not verify"));

    absl::StatusOr<SignatureCheck> one_malformed = VerifySignedJson(
        Parse(OneTwo(Sigs(absl::StrCat(Sig(good_id, kSigOneTwo), ",",
                                       Sig(bad_id, "!!"))))),
        kServer, keys);
    ASSERT_TRUE(one_malformed.ok());
    EXPECT_EQ(one_malformed->reason, Reason::kMalformedSignature) << bad_id;
  }
}

TEST(SignedJsonTest, KeyFilter) {
  const std::string json = OneTwo(Sigs(Sig(kKeyId, kSigOneTwo)));
  const Value object = Parse(json);
  absl::StatusOr<std::string> bytes = SigningBytes(object);
  ASSERT_TRUE(bytes.ok());
  const Value* signatures = object.Find("signatures");
  const std::vector<VerifyKey> keys = {SpecVerifyKey()};

  KeyFilter reject_all = [](const VerifyKey& key) -> std::optional<std::string> {
    return absl::StrCat("key ", key.key_id, " expired");
  };
  KeyFilter accept_all = [](const VerifyKey&) -> std::optional<std::string> {
    return std::nullopt;
  };

  SignatureCheck ruled_out =
      CheckServerSignatures(signatures, kServer, *bytes, keys, reject_all);
  EXPECT_EQ(ruled_out.reason, Reason::kKeyNotValid);
  EXPECT_EQ(ruled_out.message, "domain: key ed25519:1 expired");
  EXPECT_THAT(ruled_out.key_ids_verified, IsEmpty());

  SignatureCheck allowed =
      CheckServerSignatures(signatures, kServer, *bytes, keys, accept_all);
  EXPECT_TRUE(allowed.ok()) << allowed.message;
  SignatureCheck no_filter =
      CheckServerSignatures(signatures, kServer, *bytes, keys);
  EXPECT_TRUE(no_filter.ok()) << no_filter.message;

  // A ruled-out key's signature is not even looked at.
  const Value bad = Parse(OneTwo(Sigs(Sig(kKeyId, "!!"))));
  EXPECT_EQ(CheckServerSignatures(bad.Find("signatures"), kServer, *bytes, keys,
                                  reject_all)
                .reason,
            Reason::kKeyNotValid);

  // Ruled out beats unknown; one usable verifying key is enough.
  const Value two = Parse(OneTwo(Sigs(absl::StrCat(
      Sig(kKeyId, kSigOneTwo), ",", Sig("ed25519:unknown", kSigOneTwo)))));
  EXPECT_EQ(CheckServerSignatures(two.Find("signatures"), kServer, *bytes, keys,
                                  reject_all)
                .reason,
            Reason::kKeyNotValid);
  const std::vector<VerifyKey> two_keys = {
      SpecVerifyKey(), MakeVerifyKey("ed25519:old", SpecKey().public_key())};
  KeyFilter reject_old = [](const VerifyKey& key) -> std::optional<std::string> {
    if (key.key_id == "ed25519:old") return std::string("old");
    return std::nullopt;
  };
  const Value with_old = Parse(OneTwo(Sigs(absl::StrCat(
      Sig(kKeyId, kSigOneTwo), ",", Sig("ed25519:old", kSigEmpty)))));
  SignatureCheck partly = CheckServerSignatures(
      with_old.Find("signatures"), kServer, *bytes, two_keys, reject_old);
  EXPECT_TRUE(partly.ok()) << partly.message;
  EXPECT_THAT(partly.key_ids_verified, ElementsAre(kKeyId));

  // Null signatures: missing.
  EXPECT_EQ(CheckServerSignatures(nullptr, kServer, *bytes, keys).reason,
            Reason::kMissingSignature);
}

TEST(SignedJsonTest, VerdictMessages) {
  const std::vector<VerifyKey> keys = {SpecVerifyKey()};
  struct Case {
    std::string json;
    const char* message;
  };
  const Case cases[] = {
      {OneTwo(""), "no signature from domain"},
      {OneTwo(Sigs(Sig("curve25519:1", "x"))), "no ed25519 signature from domain"},
      {OneTwo(Sigs(absl::StrCat(Sig("ed25519:a", "x"), ",", Sig("ed25519:b", "x")))),
       "domain signed with unknown key(s) ed25519:a, ed25519:b"},
      {OneTwo(Sigs(Sig(kKeyId, std::string(kSigOneTwo).substr(0, 84)))),
       "signature of domain with ed25519:1 is 63 bytes, not 64"},
      {OneTwo(Sigs(R"("ed25519:1":[])")),
       "signature of domain with ed25519:1 is not a string"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<SignatureCheck> check =
        VerifySignedJson(Parse(c.json), kServer, keys);
    ASSERT_TRUE(check.ok());
    EXPECT_EQ(check->message, c.message) << c.json;
  }
}

TEST(SignedJsonTest, ObjectsThatCannotBeCanonicalisedAreErrors) {
  const std::vector<VerifyKey> keys = {SpecVerifyKey()};
  // Not an object.
  EXPECT_EQ(VerifySignedJson(Parse("[1]"), kServer, keys).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(SigningBytes(Parse("\"x\"")).ok());
  // Numbers the canonical form forbids.
  EXPECT_FALSE(VerifySignedJson(Parse(R"({"x":1.5})"), kServer, keys).ok());
  EXPECT_FALSE(
      VerifySignedJson(Parse(R"({"x":9007199254740992})"), kServer, keys).ok());
  // ... unless the legacy policy of old room versions is asked for.
  absl::StatusOr<std::string> legacy =
      SigningBytes(Parse(R"({"x":1.5})"), NumberPolicy::kLegacy);
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  EXPECT_EQ(*legacy, R"({"x":1.5})");

  Value array = Parse("[]");
  EXPECT_FALSE(SignJson(&array, kServer, kKeyId, SpecKey()).ok());
  Value fractional = Parse(R"({"x":1.5})");
  EXPECT_FALSE(SignJson(&fractional, kServer, kKeyId, SpecKey()).ok());
  EXPECT_EQ(fractional.Find("signatures"), nullptr);  // left untouched
}

TEST(SignedJsonTest, SignJsonKeepsOtherSignaturesAndReplacesJunk) {
  Value object = Parse(absl::StrCat(
      R"({"one":1,"two":"Two","signatures":{"other":{"ed25519:x":"abc"},)",
      R"("domain":{"ed25519:0":"old"}}})"));
  ASSERT_TRUE(SignJson(&object, kServer, kKeyId, SpecKey()).ok());
  EXPECT_EQ(ToJson(*object.Find("signatures")),
            absl::StrCat(R"({"domain":{"ed25519:0":"old","ed25519:1":")",
                         kSigOneTwo, R"("},"other":{"ed25519:x":"abc"}})"));

  // A `signatures` (or server entry) that is not an object is replaced.
  Value junk = Parse(R"({"one":1,"two":"Two","signatures":5})");
  ASSERT_TRUE(SignJson(&junk, kServer, kKeyId, SpecKey()).ok());
  EXPECT_EQ(SignatureIn(junk, kServer, kKeyId), kSigOneTwo);
  Value junk_entry = Parse(R"({"one":1,"two":"Two","signatures":{"domain":[]}})");
  ASSERT_TRUE(SignJson(&junk_entry, kServer, kKeyId, SpecKey()).ok());
  EXPECT_EQ(SignatureIn(junk_entry, kServer, kKeyId), kSigOneTwo);
}

TEST(ReasonNameTest, EveryReason) {
  const std::pair<Reason, const char*> cases[] = {
      {Reason::kOk, "ok"},
      {Reason::kContentHashMismatch, "content_hash_mismatch"},
      {Reason::kMissingSignature, "missing_signature"},
      {Reason::kUnknownKey, "unknown_key"},
      {Reason::kKeyNotValid, "key_not_valid"},
      {Reason::kBadSignature, "bad_signature"},
      {Reason::kMalformedSignature, "malformed_signature"},
      {Reason::kDestinationMismatch, "destination_mismatch"},
  };
  for (const auto& [reason, name] : cases) {
    EXPECT_EQ(ReasonName(reason), name);
  }
  EXPECT_EQ(ReasonName(static_cast<Reason>(99)), "unknown");
}

}  // namespace
}  // namespace keyverifier::core
