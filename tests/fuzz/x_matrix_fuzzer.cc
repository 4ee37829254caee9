// X-Matrix request authentication (service/core/x_matrix.h). The input is
// an Authorization header, then (after the first newline) a request body;
// the request is PUT /_matrix/federation/v1/send/1 to
// destination.hs.example.com, and every origin holds the spec's test key as
// ed25519:1, so seeds signed with it verify.
//
// Invariants:
// - A header that parses formats (FormatXMatrixAuthorization) to a header
//   that parses to the same fields; parsing is deterministic.
// - Signing bytes exist exactly when the body is empty or JSON, and are
//   canonical JSON.
// - VerifyFederationRequest fails (as an error, not a verdict) exactly when
//   the body is unusable; a verdict that authenticates names the header's
//   origin and the request's destination.
// - What SignFederationRequest writes for this body verifies.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/signed_json.h"
#include "service/core/verify_key.h"
#include "service/core/x_matrix.h"
#include "tests/fuzz/fuzz_check.h"

namespace keyverifier::core {
namespace {

constexpr char kSpecSeed[] = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
constexpr int64_t kNow = 1'700'000'000'000;

const Ed25519SigningKey& SpecKey() {
  static const auto* key = new Ed25519SigningKey(
      *Ed25519SigningKey::FromSeed(*DecodeBase64(kSpecSeed)));
  return *key;
}

const std::vector<VerifyKey>& Keys() {
  static const auto* keys = [] {
    VerifyKey key;
    key.key_id = "ed25519:1";
    key.public_key = SpecKey().public_key();
    key.valid_until_ts = kNow + 3600 * 1000;
    return new std::vector<VerifyKey>{key};
  }();
  return *keys;
}

std::string Describe(const absl::StatusOr<XMatrixAuthorization>& a) {
  if (!a.ok()) return a.status().ToString();
  return "origin=" + a->origin + " destination=" + a->destination.value_or("<none>") +
         " key=" + a->key_id + " sig=" + a->signature;
}

}  // namespace
}  // namespace keyverifier::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keyverifier::core;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const absl::string_view header = input.substr(0, newline);
  const absl::string_view body =
      newline == absl::string_view::npos ? absl::string_view() : input.substr(newline + 1);

  const absl::StatusOr<XMatrixAuthorization> auth = ParseXMatrixAuthorization(header);
  FUZZ_CHECK_EQ(Describe(auth), Describe(ParseXMatrixAuthorization(header)));
  if (auth.ok()) {
    const std::string formatted = FormatXMatrixAuthorization(*auth);
    FUZZ_CHECK_EQ(Describe(ParseXMatrixAuthorization(formatted)), Describe(auth));
  }

  FederationRequest request;
  request.method = "PUT";
  request.uri = "/_matrix/federation/v1/send/1";
  request.destination = "destination.hs.example.com";
  request.body = std::string(body);
  const bool body_usable = body.empty() || ParseJson(body).ok();

  const absl::StatusOr<std::string> bytes = RequestSigningBytes(request, "origin.hs.example.com");
  // A JSON body can still hold a number canonical JSON refuses.
  if (!body_usable) FUZZ_CHECK(!bytes.ok());
  if (bytes.ok()) {
    absl::StatusOr<Value> v = ParseJson(*bytes);
    FUZZ_CHECK(v.ok());
    absl::StatusOr<std::string> again = CanonicalJson(*v, NumberPolicy::kLegacy);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK_EQ(*again, *bytes);
  }

  if (auth.ok()) {
    const absl::StatusOr<RequestVerdict> verdict =
        VerifyFederationRequest(*auth, request, Keys(), kNow);
    const bool for_us = !auth->destination || *auth->destination == request.destination;
    FUZZ_CHECK(verdict.ok() == (bytes.ok() || !for_us));
    if (verdict.ok() && verdict->ok()) {
      FUZZ_CHECK_EQ(verdict->origin, auth->origin);
      FUZZ_CHECK(for_us);
    } else if (verdict.ok()) {
      FUZZ_CHECK(verdict->origin.empty());
    }
  }

  if (bytes.ok()) {
    const absl::StatusOr<std::string> signed_header =
        SignFederationRequest(request, "origin.hs.example.com", "ed25519:1", SpecKey());
    FUZZ_CHECK(signed_header.ok());
    const absl::StatusOr<XMatrixAuthorization> parsed = ParseXMatrixAuthorization(*signed_header);
    FUZZ_CHECK_MSG(parsed.ok(), parsed.status().ToString());
    const absl::StatusOr<RequestVerdict> verdict =
        VerifyFederationRequest(*parsed, request, Keys(), kNow);
    FUZZ_CHECK_MSG(verdict.ok() && verdict->ok(),
                   verdict.ok() ? verdict->message : verdict.status().ToString());
  }
  return 0;
}
