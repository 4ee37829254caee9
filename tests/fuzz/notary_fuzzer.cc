// Notary answers (service/core/server_keys.h: ParseNotaryResponse, and its
// halves NotaryEntries and CheckNotaryEntry): the body of POST
// /_matrix/key/v2/query from notary.example.org, whose key is the spec's
// test key as ed25519:1. Seeds carry entries signed by their origin and
// counter-signed by that notary.
//
// Invariants:
// - ParseNotaryResponse fails exactly when NotaryEntries does, and its
//   results are CheckNotaryEntry's, entry by entry.
// - An accepted entry lists the notary, has a valid server name and at least
//   one current key, and is accepted again from its raw_json (the canonical
//   entry with its signatures), with the same keys, both with the notary
//   expected and as a plain self-signed response.
// - An entry accepted for the pinned notary is refused for a notary of the
//   same name with another key.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/base64.h"
#include "service/core/crypto.h"
#include "service/core/json_value.h"
#include "service/core/server_keys.h"
#include "service/core/server_name.h"
#include "service/core/verify_key.h"
#include "tests/fuzz/fuzz_check.h"

namespace keyverifier::core {
namespace {

constexpr char kSpecSeed[] = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";

PinnedNotary MakeNotary(const std::string& seed) {
  PinnedNotary notary{*ServerName::Parse("notary.example.org"), {}};
  VerifyKey key;
  key.key_id = "ed25519:1";
  key.public_key = Ed25519SigningKey::FromSeed(seed)->public_key();
  notary.keys.push_back(key);
  return notary;
}

const PinnedNotary& Notary() {
  static const auto* notary = new PinnedNotary(MakeNotary(*DecodeBase64(kSpecSeed)));
  return *notary;
}

const PinnedNotary& Impostor() {
  static const auto* notary = new PinnedNotary(MakeNotary(std::string(32, 'I')));
  return *notary;
}

bool SameKeys(const ServerKeys& a, const ServerKeys& b) {
  return a.server_name == b.server_name && a.valid_until_ts == b.valid_until_ts &&
         a.verify_keys == b.verify_keys && a.old_verify_keys == b.old_verify_keys;
}

}  // namespace
}  // namespace keyverifier::core

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keyverifier::core;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  const auto answer = ParseNotaryResponse(text, Notary());
  const absl::StatusOr<std::vector<Value>> entries = NotaryEntries(text, Notary());
  FUZZ_CHECK_EQ(answer.status().ToString(), entries.status().ToString());
  if (!answer.ok()) return 0;
  FUZZ_CHECK(answer->size() == entries->size());

  for (size_t i = 0; i < entries->size(); ++i) {
    const absl::StatusOr<ServerKeys>& got = (*answer)[i];
    const absl::StatusOr<ServerKeys> checked = CheckNotaryEntry((*entries)[i], Notary());
    FUZZ_CHECK_EQ(got.status().ToString(), checked.status().ToString());
    if (!got.ok()) continue;
    FUZZ_CHECK(SameKeys(*got, *checked) && got->raw_json == checked->raw_json);

    FUZZ_CHECK(got->notaries == std::vector<std::string>{Notary().server_name.str()});
    FUZZ_CHECK_MSG(ServerName::Parse(got->server_name).ok(), got->server_name);
    FUZZ_CHECK(!got->verify_keys.empty());

    ServerKeyExpectations expect;
    expect.notary = &Notary();
    const absl::StatusOr<ServerKeys> again = ParseServerKeys(got->raw_json, expect);
    FUZZ_CHECK_MSG(again.ok() && SameKeys(*again, *got),
                   again.status().ToString() + "\nraw_json: " + keyverifier::fuzz::Escaped(got->raw_json));
    const absl::StatusOr<ServerKeys> plain = ParseServerKeys(got->raw_json);
    FUZZ_CHECK_MSG(plain.ok() && SameKeys(*plain, *got), plain.status().ToString());

    FUZZ_CHECK(!CheckNotaryEntry((*entries)[i], Impostor()).ok());
  }
  return 0;
}
