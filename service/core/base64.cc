#include "service/core/base64.h"

#include <openssl/evp.h>

#include "absl/strings/str_cat.h"

namespace keyverifier::core {
namespace {

absl::string_view Alphabet(Base64Alphabet alphabet) {
  return alphabet == Base64Alphabet::kStandard
             ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}

// Maps each byte to its value in the alphabet, or -1.
struct DecodeTable {
  int8_t value[256];
};

constexpr DecodeTable MakeTable(const char* alphabet) {
  DecodeTable t{};
  for (int i = 0; i < 256; ++i) t.value[i] = -1;
  for (int i = 0; i < 64; ++i) t.value[static_cast<unsigned char>(alphabet[i])] = i;
  return t;
}

constexpr DecodeTable kStandardTable = MakeTable(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
constexpr DecodeTable kUrlSafeTable = MakeTable(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

}  // namespace

std::string EncodeBase64Unpadded(absl::string_view bytes,
                                 Base64Alphabet alphabet) {
  // OpenSSL's table-driven encoder (libsodium's is constant-time, which
  // hashes and public keys do not need, and several times slower); then drop
  // the padding and map to the URL-safe alphabet where asked.
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  if (alphabet == Base64Alphabet::kUrlSafe) {
    for (char& c : out) {
      if (c == '+') c = '-';
      if (c == '/') c = '_';
    }
  }
  return out;
}

absl::StatusOr<std::string> DecodeBase64(absl::string_view text,
                                         Base64Alphabet alphabet) {
  const size_t original_size = text.size();
  size_t padding = 0;
  while (padding < 2 && !text.empty() && text.back() == '=') {
    text.remove_suffix(1);
    ++padding;
  }
  if (padding > 0 && original_size % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "padded base64 must be a multiple of 4 characters, got ",
        original_size));
  }
  if (text.size() % 4 == 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "base64 of ", text.size(), " characters (without padding) is impossible"));
  }
  // OpenSSL's decoder does the work: it is table-driven and ~10x faster than
  // libsodium's constant-time one, and nothing decoded here is secret
  // (signatures, public keys, hashes). It is lenient about whitespace and
  // alphabets, so the input is checked strictly first; it ignores the unused
  // low bits of a partial group, which is the tolerance wanted. URL-safe input
  // is mapped onto the standard alphabet, and padding restored, for it.
  const DecodeTable& table =
      alphabet == Base64Alphabet::kStandard ? kStandardTable : kUrlSafeTable;
  const absl::string_view standard = Alphabet(Base64Alphabet::kStandard);
  std::string input;
  input.reserve(text.size() + 3);
  for (size_t i = 0; i < text.size(); ++i) {
    int v = table.value[static_cast<unsigned char>(text[i])];
    if (v < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid ",
          alphabet == Base64Alphabet::kStandard ? "base64" : "URL-safe base64",
          " character at position ", i, " of ", text.size()));
    }
    input.push_back(standard[v]);
  }
  const size_t missing = (4 - input.size() % 4) % 4;
  input.append(missing, '=');
  std::string out(input.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(input.data()),
                          static_cast<int>(input.size()));
  if (n < 0) {
    return absl::InvalidArgumentError("invalid base64");
  }
  out.resize(out.size() - missing);
  return out;
}

}  // namespace keyverifier::core
