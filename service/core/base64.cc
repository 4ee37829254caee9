#include "service/core/base64.h"

#include <sodium.h>

#include "absl/strings/str_cat.h"

namespace keyverifier::core {
namespace {

int SodiumVariant(Base64Alphabet alphabet) {
  return alphabet == Base64Alphabet::kStandard
             ? sodium_base64_VARIANT_ORIGINAL_NO_PADDING
             : sodium_base64_VARIANT_URLSAFE_NO_PADDING;
}

absl::string_view Alphabet(Base64Alphabet alphabet) {
  return alphabet == Base64Alphabet::kStandard
             ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}

}  // namespace

std::string EncodeBase64Unpadded(absl::string_view bytes,
                                 Base64Alphabet alphabet) {
  const int variant = SodiumVariant(alphabet);
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(),
                    reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(out.size() - 1);  // libsodium counts the terminating NUL
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
  std::string input(text);
  // The last character of a partial group carries 2 or 4 bits that encode
  // nothing; clear them so libsodium's canonical-only decoder accepts it.
  if (!input.empty() && input.size() % 4 != 0) {
    absl::string_view abc = Alphabet(alphabet);
    size_t v = abc.find(input.back());
    if (v != absl::string_view::npos) {
      v &= input.size() % 4 == 2 ? 0x30 : 0x3C;
      input.back() = abc[v];
    }
  }
  std::string out(input.size() / 4 * 3 + 3, '\0');
  size_t out_len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()),
                        out.size(), input.data(), input.size(), nullptr,
                        &out_len, &end, SodiumVariant(alphabet)) != 0 ||
      end != input.data() + input.size()) {
    size_t at = end ? static_cast<size_t>(end - input.data()) : 0;
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid ",
        alphabet == Base64Alphabet::kStandard ? "base64" : "URL-safe base64",
        " at character ", at, " of ", input.size()));
  }
  out.resize(out_len);
  return out;
}

}  // namespace keyverifier::core
