#include "service/core/x_matrix.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/core/crypto.h"

namespace keyverifier::core {
namespace {

using ::testing::HasSubstr;

// --- Parsing the header -----------------------------------------------------

struct Parsed {
  std::string header;
  std::string origin;
  std::optional<std::string> destination;
  std::string key_id;
  std::string signature;
};

TEST(ParseXMatrixTest, AcceptedForms) {
  const Parsed cases[] = {
      // The example of the server-server API, "Request Authentication".
      {"X-Matrix origin=\"origin.hs.example.com\",destination=\"destination.hs."
       "example.com\",key=\"ed25519:key1\",sig=\"ABCDEF...\"",
       "origin.hs.example.com", "destination.hs.example.com", "ed25519:key1",
       "ABCDEF..."},
      // Scheme and names are case-insensitive; order does not matter.
      {"x-matrix origin=a.org,key=ed25519:k,sig=s", "a.org", std::nullopt,
       "ed25519:k", "s"},
      {"X-MATRIX SIG=s,KEY=\"ed25519:k\",ORIGIN=a.org,Destination=b.org",
       "a.org", "b.org", "ed25519:k", "s"},
      // Unquoted values may contain colons (older senders).
      {"X-Matrix origin=example.org:8448,key=ed25519:abc,sig=abc",
       "example.org:8448", std::nullopt, "ed25519:abc", "abc"},
      // ... and brackets, as a server name may be an IPv6 literal.
      {"X-Matrix origin=[::1]:8448,key=ed25519:abc,sig=abc", "[::1]:8448",
       std::nullopt, "ed25519:abc", "abc"},
      {"X-Matrix origin=\"[::1]:8448\",key=ed25519:abc,sig=abc", "[::1]:8448",
       std::nullopt, "ed25519:abc", "abc"},
      // Quoted values: backslash-escaped characters are unescaped.
      {R"(X-Matrix origin="a\"b\\c",key="ed25519:\k\e\y",sig="x\,y=z/+")",
       "a\"b\\c", std::nullopt, "ed25519:key", "x,y=z/+"},
      {"X-Matrix origin=\"a org\",key=\"k\\ \",sig=\"\\\t\"", "a org",
       std::nullopt, "k ", "\t"},
      {"X-Matrix origin=\"caf\xc3\xa9\",key=k,sig=s", "caf\xc3\xa9",
       std::nullopt, "k", "s"},  // obs-text
      // Spaces and tabs around commas and "=".
      {"X-Matrix origin=a.org \t, \tkey=ed25519:k\t,sig=s", "a.org",
       std::nullopt, "ed25519:k", "s"},
      {"X-Matrix origin = a.org ,key= k ,sig =s", "a.org", std::nullopt, "k",
       "s"},
      {"X-Matrix origin=\"a.org\"  ,  key=\"k\"\t,\tsig=\"s\"  ", "a.org",
       std::nullopt, "k", "s"},
      // Several spaces after the scheme.
      {"X-Matrix     origin=a.org,key=k,sig=s", "a.org", std::nullopt, "k",
       "s"},
      // Unknown parameters are ignored, whatever their value.
      {"X-Matrix realm=\"x,y\",origin=a.org,foo=bar,key=k,Sig=s,x=\"\"",
       "a.org", std::nullopt, "k", "s"},
      {"X-Matrix signature=other,origin=a.org,key=k,sig=s", "a.org",
       std::nullopt, "k", "s"},
      // Empty list elements are ignored.
      {"X-Matrix ,origin=a.org,,key=k, ,sig=s,", "a.org", std::nullopt, "k",
       "s"},
      // Empty quoted values are values.
      {"X-Matrix origin=a.org,destination=\"\",key=\"\",sig=\"\"", "a.org", "",
       "", ""},
  };
  for (const Parsed& c : cases) {
    SCOPED_TRACE(c.header);
    absl::StatusOr<XMatrixAuthorization> auth =
        ParseXMatrixAuthorization(c.header);
    ASSERT_TRUE(auth.ok()) << auth.status();
    EXPECT_EQ(auth->origin, c.origin);
    EXPECT_EQ(auth->destination, c.destination);
    EXPECT_EQ(auth->key_id, c.key_id);
    EXPECT_EQ(auth->signature, c.signature);
  }
}

TEST(ParseXMatrixTest, RejectedForms) {
  struct Case {
    std::string header;
    const char* error;
  };
  const Case cases[] = {
      {"", "scheme is not X-Matrix"},
      {"Bearer abc", "scheme is not X-Matrix"},
      {"X-Matri", "scheme is not X-Matrix"},
      {"X-Matrix", "expected a space after X-Matrix"},
      {"X-Matrixorigin=a.org,key=k,sig=s", "expected a space after X-Matrix"},
      {"X-Matrix\torigin=a.org,key=k,sig=s", "expected a space after X-Matrix"},
      {"X-Matrix-2 origin=a.org,key=k,sig=s", "expected a space after X-Matrix"},
      {" X-Matrix origin=a.org,key=k,sig=s", "scheme is not X-Matrix"},
      // Missing parameters.
      {"X-Matrix ", "parameter \"origin\" missing"},
      {"X-Matrix key=k,sig=s", "parameter \"origin\" missing"},
      {"X-Matrix origin=a.org,sig=s", "parameter \"key\" missing"},
      {"X-Matrix origin=a.org,key=k", "parameter \"sig\" missing"},
      {"X-Matrix origin=\"\",key=k,sig=s", "origin is empty"},
      // Repeated parameters, whatever their case.
      {"X-Matrix origin=a.org,origin=a.org,key=k,sig=s",
       "parameter \"origin\" repeated"},
      {"X-Matrix origin=a.org,key=k,sig=s,ORIGIN=b.org",
       "parameter \"origin\" repeated"},
      {"X-Matrix origin=a.org,destination=b,Destination=b,key=k,sig=s",
       "parameter \"destination\" repeated"},
      {"X-Matrix origin=a.org,key=k,key=k,sig=s", "parameter \"key\" repeated"},
      {"X-Matrix origin=a.org,key=k,sig=s,sig=t", "parameter \"sig\" repeated"},
      // Syntax.
      {"X-Matrix origin=a.org,key=k,sig=\"abc", "unterminated quoted value of \"sig\""},
      {"X-Matrix origin=a.org,key=k,sig=\"abc\\", "dangling backslash in \"sig\""},
      {"X-Matrix origin", "expected '=' after \"origin\""},
      {"X-Matrix origin a.org", "expected '=' after \"origin\""},
      {"X-Matrix origin=,key=k,sig=s", "expected a value for \"origin\""},
      {"X-Matrix origin=a.org key=k,sig=s", "expected ','"},
      {"X-Matrix origin=\"a.org\"x,key=k,sig=s", "expected ','"},
      {"X-Matrix origin=a.org;key=k,sig=s", "expected ','"},
      {"X-Matrix =a.org,key=k,sig=s", "expected a parameter name"},
      {"X-Matrix or:igin=a.org,key=k,sig=s", "expected '=' after \"or\""},
      {"X-Matrix [origin]=a.org,key=k,sig=s", "expected a parameter name"},
      // A value with characters outside token (and ':') must be quoted.
      {"X-Matrix origin=a.org,key=k,sig=ab/cd", "expected ','"},
      {"X-Matrix origin=a.org,key=k,sig=abc==", "expected ','"},
      {"X-Matrix origin=a.org,key=k,sig=a b", "expected ','"},
      // Control characters are not allowed in quoted values.
      {std::string("X-Matrix origin=\"a\0b\",key=k,sig=s", 33),
       "control character in the value of \"origin\""},
      {"X-Matrix origin=\"a\r\nb\",key=k,sig=s",
       "control character in the value of \"origin\""},
      {"X-Matrix origin=a.org,key=\"k\\\x01\",sig=s",
       "control character in the value of \"key\""},
      {"X-Matrix origin=a.org,key=\"k\x7f\",sig=s",
       "control character in the value of \"key\""},
      {std::string("X-Matrix origin=a\0b,key=k,sig=s", 31), "expected ','"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<XMatrixAuthorization> auth =
        ParseXMatrixAuthorization(c.header);
    ASSERT_FALSE(auth.ok()) << c.header;
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(auth.status().message(),
                HasSubstr(absl::StrCat("X-Matrix Authorization header: ",
                                       c.error)))
        << c.header;
  }
}

TEST(ParseXMatrixTest, ErrorsNameThePosition) {
  EXPECT_EQ(ParseXMatrixAuthorization("X-Matrix origin=a.org key=k,sig=s")
                .status()
                .message(),
            "X-Matrix Authorization header: expected ',' at character 22");
}

TEST(FormatXMatrixTest, QuotesEveryValueInSpecOrder) {
  XMatrixAuthorization auth;
  auth.origin = "origin.hs.example.com";
  auth.destination = "destination.hs.example.com";
  auth.key_id = "ed25519:key1";
  auth.signature = "ABCDEF...";
  EXPECT_EQ(FormatXMatrixAuthorization(auth),
            "X-Matrix origin=\"origin.hs.example.com\",destination=\"destination."
            "hs.example.com\",key=\"ed25519:key1\",sig=\"ABCDEF...\"");
  auth.destination.reset();
  EXPECT_EQ(FormatXMatrixAuthorization(auth),
            "X-Matrix origin=\"origin.hs.example.com\",key=\"ed25519:key1\","
            "sig=\"ABCDEF...\"");

  // Quotes and backslashes are escaped, and the result parses back.
  auth.origin = "a\"b\\c";
  auth.destination = "d";
  EXPECT_EQ(FormatXMatrixAuthorization(auth),
            R"(X-Matrix origin="a\"b\\c",destination="d",key="ed25519:key1",)"
            R"(sig="ABCDEF...")");
  absl::StatusOr<XMatrixAuthorization> back =
      ParseXMatrixAuthorization(FormatXMatrixAuthorization(auth));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->origin, auth.origin);
  EXPECT_EQ(back->destination, auth.destination);
  EXPECT_EQ(back->key_id, auth.key_id);
  EXPECT_EQ(back->signature, auth.signature);
}

// --- Signing and verifying requests ----------------------------------------

// Matrix spec appendices, "Cryptographic Test Vectors": the signing key seed.
constexpr char kSpecSeed[] = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
constexpr char kOrigin[] = "origin.hs.example.com";
constexpr char kDestination[] = "destination.hs.example.com";
constexpr char kKeyId[] = "ed25519:key1";
constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kHour = 3'600'000;

Ed25519SigningKey SpecKey() {
  absl::StatusOr<std::string> seed = DecodeBase64(kSpecSeed);
  EXPECT_TRUE(seed.ok()) << seed.status();
  absl::StatusOr<Ed25519SigningKey> key = Ed25519SigningKey::FromSeed(*seed);
  EXPECT_TRUE(key.ok()) << key.status();
  return *std::move(key);
}

VerifyKey CurrentKey(std::string key_id = kKeyId) {
  VerifyKey key;
  key.key_id = std::move(key_id);
  key.public_key = SpecKey().public_key();
  key.valid_until_ts = kNow + kHour;
  return key;
}

FederationRequest PutTransaction() {
  FederationRequest r;
  r.method = "PUT";
  r.uri = "/_matrix/federation/v1/send/1234?x=1";
  r.destination = kDestination;
  r.body = R"({ "pdus": [], "edus": [], "origin": "origin.hs.example.com" })";
  return r;
}

// The canonical signed object for PutTransaction(), written out by hand.
constexpr char kPutTransactionBytes[] =
    R"({"content":{"edus":[],"origin":"origin.hs.example.com","pdus":[]},)"
    R"("destination":"destination.hs.example.com","method":"PUT",)"
    R"("origin":"origin.hs.example.com",)"
    R"("uri":"/_matrix/federation/v1/send/1234?x=1"})";

XMatrixAuthorization Sign(const FederationRequest& request,
                          absl::string_view origin = kOrigin,
                          absl::string_view key_id = kKeyId) {
  absl::StatusOr<std::string> header =
      SignFederationRequest(request, origin, key_id, SpecKey());
  EXPECT_TRUE(header.ok()) << header.status();
  absl::StatusOr<XMatrixAuthorization> auth =
      ParseXMatrixAuthorization(header.ok() ? *header : "");
  EXPECT_TRUE(auth.ok()) << auth.status();
  return auth.ok() ? *auth : XMatrixAuthorization();
}

RequestVerdict Verify(const XMatrixAuthorization& auth,
                      const FederationRequest& request,
                      std::vector<VerifyKey> keys = {CurrentKey()},
                      int64_t now = kNow) {
  absl::StatusOr<RequestVerdict> v =
      VerifyFederationRequest(auth, request, keys, now);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? *v : RequestVerdict{Reason::kOk, "<error>", ""};
}

TEST(RequestSigningBytesTest, ExactBytes) {
  absl::StatusOr<std::string> bytes =
      RequestSigningBytes(PutTransaction(), kOrigin);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, kPutTransactionBytes);

  // No body: no "content" member at all.
  FederationRequest get;
  get.method = "GET";
  get.uri = "/_matrix/federation/v1/version";
  get.destination = kDestination;
  bytes = RequestSigningBytes(get, kOrigin);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes,
            R"({"destination":"destination.hs.example.com","method":"GET",)"
            R"("origin":"origin.hs.example.com",)"
            R"("uri":"/_matrix/federation/v1/version"})");

  // Members of the body named like the skipped top-level members are kept.
  FederationRequest put = get;
  put.method = "PUT";
  put.body = R"({"signatures":{"a":{}},"unsigned":1})";
  bytes = RequestSigningBytes(put, kOrigin);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes,
            R"({"content":{"signatures":{"a":{}},"unsigned":1},)"
            R"("destination":"destination.hs.example.com","method":"PUT",)"
            R"("origin":"origin.hs.example.com",)"
            R"("uri":"/_matrix/federation/v1/version"})");

  // Any JSON body is content, not only objects.
  put.body = "[1,\"\\u00e9\"]";
  bytes = RequestSigningBytes(put, kOrigin);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, absl::StrCat(R"({"content":[1,"é"],)",
                                 R"("destination":"destination.hs.example.com",)",
                                 R"("method":"PUT","origin":"origin.hs.example.com",)",
                                 R"("uri":"/_matrix/federation/v1/version"})"));

  // Bodies are encoded the way their (Python) senders encode them, so numbers
  // outside the strict canonical grammar still give bytes.
  put.body = R"({"big":12345678901234567890,"float":1.5,"exp":1e10})";
  bytes = RequestSigningBytes(put, kOrigin);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_THAT(*bytes,
              HasSubstr(R"({"content":{"big":12345678901234567890,)"
                        R"("exp":10000000000.0,"float":1.5},)"));
}

TEST(RequestSigningBytesTest, BodyMustBeJson) {
  FederationRequest r = PutTransaction();
  for (const char* body : {"not json", "{", "{\"a\":1}{", " ", "{\"a\":1,\"a\":2}"}) {
    r.body = body;
    absl::StatusOr<std::string> bytes = RequestSigningBytes(r, kOrigin);
    ASSERT_FALSE(bytes.ok()) << body;
    EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(bytes.status().message(), HasSubstr("request body: "));
    EXPECT_FALSE(SignFederationRequest(r, kOrigin, kKeyId, SpecKey()).ok());
  }
}

TEST(XMatrixVerifyTest, SignedRequestVerifies) {
  const FederationRequest request = PutTransaction();
  const XMatrixAuthorization auth = Sign(request);
  EXPECT_EQ(auth.origin, kOrigin);
  EXPECT_EQ(auth.destination, kDestination);
  EXPECT_EQ(auth.key_id, kKeyId);

  RequestVerdict v = Verify(auth, request);
  EXPECT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.reason, Reason::kOk);
  EXPECT_EQ(v.origin, kOrigin);

  // Only the body's JSON value is signed, not its spelling.
  FederationRequest respelled = request;
  respelled.body =
      R"({"origin":"origin.hs.example.com","edus":[],"pdus":[]})";
  EXPECT_TRUE(Verify(auth, respelled).ok());
}

TEST(XMatrixVerifyTest, MatchesAnIndependentSignature) {
  // Sign the hand-written canonical object directly and compare with what
  // SignFederationRequest put into the header.
  const std::string expected =
      EncodeBase64Unpadded(SpecKey().Sign(kPutTransactionBytes));
  const XMatrixAuthorization auth = Sign(PutTransaction());
  EXPECT_EQ(auth.signature, expected);

  absl::StatusOr<std::string> header =
      SignFederationRequest(PutTransaction(), kOrigin, kKeyId, SpecKey());
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(*header,
            absl::StrCat("X-Matrix origin=\"origin.hs.example.com\","
                         "destination=\"destination.hs.example.com\","
                         "key=\"ed25519:key1\",sig=\"",
                         expected, "\""));

  // A header written by hand in another accepted style verifies as well.
  absl::StatusOr<XMatrixAuthorization> hand = ParseXMatrixAuthorization(
      absl::StrCat("x-matrix  KEY=ed25519:key1 , origin=origin.hs.example.com,"
                   "\tsig=\"",
                   expected, "\""));
  ASSERT_TRUE(hand.ok()) << hand.status();
  RequestVerdict v = Verify(*hand, PutTransaction());
  EXPECT_TRUE(v.ok()) << v.message;
}

TEST(XMatrixVerifyTest, GetWithoutBody) {
  FederationRequest get;
  get.method = "GET";
  get.uri = "/_matrix/federation/v1/query/profile?user_id=%40a%3Ab&field=x";
  get.destination = kDestination;
  const XMatrixAuthorization auth = Sign(get);
  EXPECT_EQ(auth.signature,
            EncodeBase64Unpadded(SpecKey().Sign(absl::StrCat(
                R"({"destination":"destination.hs.example.com","method":"GET",)",
                R"("origin":"origin.hs.example.com",)",
                R"("uri":"/_matrix/federation/v1/query/profile?user_id=%40a%3Ab&field=x"})"))));
  EXPECT_TRUE(Verify(auth, get).ok());

  // A body that was not signed breaks the signature, even an empty object.
  FederationRequest with_body = get;
  with_body.body = "{}";
  EXPECT_EQ(Verify(auth, with_body).reason, Reason::kBadSignature);
}

TEST(XMatrixVerifyTest, Destination) {
  const FederationRequest request = PutTransaction();
  const XMatrixAuthorization auth = Sign(request);

  // Meant for another server: refused before any signature check.
  FederationRequest elsewhere = request;
  elsewhere.destination = "other.example.org";
  RequestVerdict v = Verify(auth, elsewhere);
  EXPECT_EQ(v.reason, Reason::kDestinationMismatch);
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.origin, "");
  EXPECT_EQ(v.message,
            "request is for \"destination.hs.example.com\", not "
            "\"other.example.org\"");
  // Server names are compared exactly (case-sensitively).
  elsewhere.destination = "Destination.hs.example.com";
  EXPECT_EQ(Verify(auth, elsewhere).reason, Reason::kDestinationMismatch);

  // Without the parameter (older senders), the signature is checked against
  // our own name.
  XMatrixAuthorization no_destination = auth;
  no_destination.destination.reset();
  v = Verify(no_destination, request);
  EXPECT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.origin, kOrigin);
  // ... so a request signed for another server does not verify here.
  EXPECT_EQ(Verify(no_destination, elsewhere).reason, Reason::kBadSignature);
}

TEST(XMatrixVerifyTest, TamperedRequestsDoNotVerify) {
  const FederationRequest request = PutTransaction();
  const XMatrixAuthorization auth = Sign(request);
  struct Case {
    const char* name;
    FederationRequest request;
  };
  std::vector<Case> cases;
  cases.push_back({"body", request});
  cases.back().request.body = R"({"pdus":[],"edus":[{}],"origin":"origin.hs.example.com"})";
  cases.push_back({"body removed", request});
  cases.back().request.body = "";
  cases.push_back({"uri", request});
  cases.back().request.uri = "/_matrix/federation/v1/send/1235?x=1";
  cases.push_back({"query", request});
  cases.back().request.uri = "/_matrix/federation/v1/send/1234";
  cases.push_back({"method", request});
  cases.back().request.method = "POST";
  cases.push_back({"method case", request});
  cases.back().request.method = "put";
  for (const Case& c : cases) {
    RequestVerdict v = Verify(auth, c.request);
    EXPECT_EQ(v.reason, Reason::kBadSignature) << c.name;
    EXPECT_EQ(v.origin, "") << c.name;
  }

  // Claiming another origin: the origin is part of what was signed.
  XMatrixAuthorization other_origin = auth;
  other_origin.origin = "evil.example.org";
  EXPECT_EQ(Verify(other_origin, request).reason, Reason::kBadSignature);

  XMatrixAuthorization malformed = auth;
  malformed.signature = "!!";
  EXPECT_EQ(Verify(malformed, request).reason, Reason::kMalformedSignature);
  malformed.signature = auth.signature.substr(0, 84);  // 63 bytes
  EXPECT_EQ(Verify(malformed, request).reason, Reason::kMalformedSignature);
}

TEST(XMatrixVerifyTest, BodyNotJsonIsAnError) {
  FederationRequest request = PutTransaction();
  const XMatrixAuthorization auth = Sign(request);
  request.body = "{not json";
  absl::StatusOr<RequestVerdict> v =
      VerifyFederationRequest(auth, request, {CurrentKey()}, kNow);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("request body: "));
}

TEST(XMatrixVerifyTest, Keys) {
  const FederationRequest request = PutTransaction();
  const XMatrixAuthorization auth = Sign(request);

  // An old key (from old_verify_keys) never authenticates a request.
  VerifyKey old = CurrentKey();
  old.valid_until_ts.reset();
  old.expired_ts = kNow + kHour;
  RequestVerdict v = Verify(auth, request, {old});
  EXPECT_EQ(v.reason, Reason::kKeyNotValid);
  EXPECT_THAT(v.message, HasSubstr("old key"));

  // A current key whose valid_until_ts has passed.
  VerifyKey stale = CurrentKey();
  stale.valid_until_ts = kNow - 1;
  v = Verify(auth, request, {stale});
  EXPECT_EQ(v.reason, Reason::kKeyNotValid);
  EXPECT_EQ(v.origin, "");
  // ... valid up to and including valid_until_ts.
  stale.valid_until_ts = kNow;
  EXPECT_TRUE(Verify(auth, request, {stale}).ok());
  VerifyKey no_validity = CurrentKey();
  no_validity.valid_until_ts.reset();
  EXPECT_EQ(Verify(auth, request, {no_validity}).reason, Reason::kKeyNotValid);

  // Unknown key: none at all, or only others.
  EXPECT_EQ(Verify(auth, request, {}).reason, Reason::kUnknownKey);
  v = Verify(auth, request, {CurrentKey("ed25519:other")});
  EXPECT_EQ(v.reason, Reason::kUnknownKey);
  EXPECT_THAT(v.message, HasSubstr("ed25519:key1"));

  // The right id with another public key.
  VerifyKey wrong = CurrentKey();
  wrong.public_key[0] ^= 0x01;
  EXPECT_EQ(Verify(auth, request, {wrong}).reason, Reason::kBadSignature);

  // Among several keys, the one named in the header is used.
  v = Verify(auth, request, {CurrentKey("ed25519:a"), CurrentKey()});
  EXPECT_TRUE(v.ok()) << v.message;

  // A key id whose algorithm is not ed25519 is not understood.
  const XMatrixAuthorization curve = Sign(request, kOrigin, "curve25519:key1");
  EXPECT_EQ(Verify(curve, request, {CurrentKey("curve25519:key1")}).reason,
            Reason::kMissingSignature);
}

}  // namespace
}  // namespace keyverifier::core
