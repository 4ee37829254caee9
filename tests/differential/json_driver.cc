// Driver for the differential test against the Python reference
// (differential_test.py): reads one JSON request per line on stdin and writes
// one JSON answer per line on stdout, so thousands of cases cost one process.
//
// Documents and outputs travel base64-encoded, so that what is under test (the
// parser, the canonical encoder) cannot distort its own inputs and outputs,
// and so that documents which are not valid UTF-8 can be sent at all.
//
// Requests (all strings; "policy" is "strict", "spec" or "legacy"):
//   {"op":"canonical","policy":P,"json_b64":D}
//     -> {"ok":true,"out_b64":C} | {"ok":false,"error":E}
//   {"op":"sign","policy":P,"server":S,"key_id":K,"seed_b64":X,"json_b64":D}
//     -> {"ok":true,"signature":SIG,"signed_b64":C}  (C: canonical, signed)
//   {"op":"verify","policy":P,"server":S,"key_id":K,"public_key_b64":X,
//    "json_b64":D}
//     -> {"ok":true,"valid":B,"reason":R,"message":M} | {"ok":false,"error":E}
// A request that is itself malformed gets {"ok":false,"request_error":E}.
#include <iostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/signed_json.h"
#include "service/core/verify_key.h"

namespace keyverifier::core {
namespace {

absl::StatusOr<std::string> Field(const Value& request,
                                  absl::string_view name) {
  const Value* v = request.Find(name);
  if (v == nullptr || !v->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing string field \"", name, "\""));
  }
  return v->string_value();
}

absl::StatusOr<std::string> Base64Field(const Value& request,
                                        absl::string_view name) {
  absl::StatusOr<std::string> text = Field(request, name);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::string> bytes = DecodeBase64(*text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field \"", name, "\": ", bytes.status().message()));
  }
  return bytes;
}

absl::StatusOr<NumberPolicy> Policy(const Value& request) {
  absl::StatusOr<std::string> name = Field(request, "policy");
  if (!name.ok()) return name.status();
  if (*name == "strict") return NumberPolicy::kStrict;
  if (*name == "spec") return NumberPolicy::kSpec;
  if (*name == "legacy") return NumberPolicy::kLegacy;
  return absl::InvalidArgumentError(absl::StrCat("unknown policy ", *name));
}

Value Rejected(const absl::Status& status) {
  Value answer = Value::Object();
  answer.Set("ok", Value::Bool(false));
  answer.Set("error", Value::String(std::string(status.message())));
  return answer;
}

Value Accepted() {
  Value answer = Value::Object();
  answer.Set("ok", Value::Bool(true));
  return answer;
}

absl::StatusOr<Value> Canonical(const Value& request) {
  absl::StatusOr<NumberPolicy> policy = Policy(request);
  if (!policy.ok()) return policy.status();
  absl::StatusOr<std::string> doc = Base64Field(request, "json_b64");
  if (!doc.ok()) return doc.status();

  absl::StatusOr<Value> value = ParseJson(*doc);
  if (!value.ok()) return Rejected(value.status());
  absl::StatusOr<std::string> out = CanonicalJson(*value, *policy);
  if (!out.ok()) return Rejected(out.status());
  Value answer = Accepted();
  answer.Set("out_b64", Value::String(EncodeBase64Unpadded(*out)));
  return answer;
}

absl::StatusOr<Value> Sign(const Value& request) {
  absl::StatusOr<NumberPolicy> policy = Policy(request);
  if (!policy.ok()) return policy.status();
  absl::StatusOr<std::string> server = Field(request, "server");
  if (!server.ok()) return server.status();
  absl::StatusOr<std::string> key_id = Field(request, "key_id");
  if (!key_id.ok()) return key_id.status();
  absl::StatusOr<std::string> seed = Base64Field(request, "seed_b64");
  if (!seed.ok()) return seed.status();
  absl::StatusOr<Ed25519SigningKey> key = Ed25519SigningKey::FromSeed(*seed);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> doc = Base64Field(request, "json_b64");
  if (!doc.ok()) return doc.status();

  absl::StatusOr<Value> value = ParseJson(*doc);
  if (!value.ok()) return Rejected(value.status());
  if (!value->is_object()) {
    return Rejected(absl::InvalidArgumentError("not a JSON object"));
  }
  absl::Status signed_ok = SignJson(&*value, *server, *key_id, *key, *policy);
  if (!signed_ok.ok()) return Rejected(signed_ok);
  absl::StatusOr<std::string> out = CanonicalJson(*value, *policy);
  if (!out.ok()) return Rejected(out.status());

  Value answer = Accepted();
  const Value* sig = value->Find("signatures")->Find(*server)->Find(*key_id);
  answer.Set("signature", *sig);
  answer.Set("signed_b64", Value::String(EncodeBase64Unpadded(*out)));
  return answer;
}

absl::StatusOr<Value> Verify(const Value& request) {
  absl::StatusOr<NumberPolicy> policy = Policy(request);
  if (!policy.ok()) return policy.status();
  absl::StatusOr<std::string> server = Field(request, "server");
  if (!server.ok()) return server.status();
  absl::StatusOr<std::string> key_id = Field(request, "key_id");
  if (!key_id.ok()) return key_id.status();
  absl::StatusOr<std::string> public_key =
      Base64Field(request, "public_key_b64");
  if (!public_key.ok()) return public_key.status();
  VerifyKey key;
  key.key_id = *key_id;
  absl::StatusOr<Ed25519PublicKey> pk =
      Ed25519PublicKeyFromBytes(*public_key, "public_key_b64");
  if (!pk.ok()) return pk.status();
  key.public_key = *pk;
  absl::StatusOr<std::string> doc = Base64Field(request, "json_b64");
  if (!doc.ok()) return doc.status();

  absl::StatusOr<Value> value = ParseJson(*doc);
  if (!value.ok()) return Rejected(value.status());
  absl::StatusOr<SignatureCheck> check =
      VerifySignedJson(*value, *server, {key}, *policy);
  if (!check.ok()) return Rejected(check.status());
  Value answer = Accepted();
  answer.Set("valid", Value::Bool(check->ok()));
  answer.Set("reason", Value::String(std::string(ReasonName(check->reason))));
  answer.Set("message", Value::String(check->message));
  return answer;
}

// A document the core rejects is an answer with "error"; a request the driver
// cannot even read is a bug in the test and answers with "request_error".
Value Answer(absl::string_view line) {
  absl::StatusOr<Value> answer = [&]() -> absl::StatusOr<Value> {
    absl::StatusOr<Value> request = ParseJson(line);
    if (!request.ok()) return request.status();
    absl::StatusOr<std::string> op = Field(*request, "op");
    if (!op.ok()) return op.status();
    if (*op == "canonical") return Canonical(*request);
    if (*op == "sign") return Sign(*request);
    if (*op == "verify") return Verify(*request);
    return absl::InvalidArgumentError(absl::StrCat("unknown op ", *op));
  }();
  if (answer.ok()) return *std::move(answer);
  Value broken = Value::Object();
  broken.Set("ok", Value::Bool(false));
  broken.Set("request_error",
             Value::String(std::string(answer.status().message())));
  return broken;
}

}  // namespace
}  // namespace keyverifier::core

int main() {
  std::ios::sync_with_stdio(false);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    std::cout << keyverifier::core::ToJson(keyverifier::core::Answer(line))
              << '\n';
  }
  std::cout.flush();
  return std::cout.good() ? 0 : 1;
}
