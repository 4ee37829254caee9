#include "service/core/signing_key_file.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service/core/base64.h"
#include "service/core/verify_key.h"

namespace keyverifier::core {

absl::StatusOr<NamedSigningKey> ParseSigningKeyFile(absl::string_view text) {
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    auto bad = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("signing key file line ", line_number, ": ", what));
    };
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (fields.size() != 3) {
      return bad(absl::StrCat("expected \"ed25519 VERSION SEED\", found ", fields.size(), " fields"));
    }
    if (fields[0] != "ed25519") {
      return bad(absl::StrCat("algorithm \"", fields[0], "\" is not ed25519"));
    }
    const std::string key_id = absl::StrCat("ed25519:", fields[1]);
    if (!IsValidEd25519KeyId(key_id)) {
      return bad(absl::StrCat("version \"", fields[1], "\" is not [a-zA-Z0-9_]+"));
    }
    absl::StatusOr<std::string> seed = DecodeBase64(fields[2]);
    if (!seed.ok()) return bad("the seed is not base64");
    if (seed->size() != 32) {
      return bad(absl::StrCat("the seed is ", seed->size(), " bytes, expected 32"));
    }
    absl::StatusOr<Ed25519SigningKey> key = Ed25519SigningKey::FromSeed(*seed);
    if (!key.ok()) return bad(key.status().message());
    return NamedSigningKey{key_id, *std::move(key)};
  }
  return absl::InvalidArgumentError("signing key file has no key");
}

std::string SigningKeyFileLine(absl::string_view version, absl::string_view seed) {
  return absl::StrCat("ed25519 ", version, " ", EncodeBase64Unpadded(seed), "\n");
}

}  // namespace keyverifier::core
