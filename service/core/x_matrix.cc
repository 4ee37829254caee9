#include "service/core/x_matrix.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"

namespace keyverifier::core {
namespace {

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("X-Matrix Authorization header: ", why));
}

// RFC 9110 tchar, plus ':' which the spec asks recipients to accept unquoted:
// older senders wrote `origin=example.org:8448` without quotes. '[' and ']'
// are accepted for the same reason, as a server name may be an IPv6 literal
// (`origin=[::1]:8448`). None of them can be confused with the delimiters.
bool IsValueTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~:[]").find(c) !=
             absl::string_view::npos;
}
bool IsNameTokenChar(char c) {
  return c != ':' && c != '[' && c != ']' && IsValueTokenChar(c);
}
bool IsWs(char c) { return c == ' ' || c == '\t'; }
// What RFC 9110 allows inside a quoted string, escaped or not: HTAB, SP,
// visible ASCII and obs-text (bytes >= 0x80). Other control characters (NUL,
// CR, LF, DEL, ...) are refused: they would otherwise reach key lookups and
// logs as part of an origin or key id.
bool IsQuotedChar(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return c == '\t' || (u >= 0x20 && u != 0x7f);
}

class HeaderParser {
 public:
  explicit HeaderParser(absl::string_view s) : s_(s) {}

  absl::StatusOr<XMatrixAuthorization> Parse() {
    constexpr absl::string_view kScheme = "X-Matrix";
    if (s_.size() < kScheme.size() ||
        !absl::EqualsIgnoreCase(s_.substr(0, kScheme.size()), kScheme)) {
      return Bad("scheme is not X-Matrix");
    }
    pos_ = kScheme.size();
    if (pos_ >= s_.size() || s_[pos_] != ' ') {
      return Bad("expected a space after X-Matrix");
    }
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;

    XMatrixAuthorization auth;
    bool seen[4] = {false, false, false, false};
    // True where a parameter may start: at the beginning or after a comma.
    bool may_start = true;
    while (true) {
      SkipWs();
      if (pos_ >= s_.size()) break;
      // RFC 9110 lists may have empty elements anywhere (", ,a=b,,c=d,"),
      // which recipients must ignore.
      if (s_[pos_] == ',') {
        ++pos_;
        may_start = true;
        continue;
      }
      if (!may_start) return BadAt("expected ','");
      may_start = false;
      std::string name;
      while (pos_ < s_.size() && IsNameTokenChar(s_[pos_])) name += s_[pos_++];
      if (name.empty()) return BadAt("expected a parameter name");
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != '=') {
        return BadAt(absl::StrCat("expected '=' after \"", name, "\""));
      }
      ++pos_;
      SkipWs();
      absl::StatusOr<std::string> value = ParseValue(name);
      if (!value.ok()) return value.status();
      absl::AsciiStrToLower(&name);
      int slot = name == "origin" ? 0 : name == "destination" ? 1
               : name == "key"    ? 2 : name == "sig"         ? 3 : -1;
      if (slot < 0) continue;  // unknown parameters are ignored
      if (seen[slot]) return Bad(absl::StrCat("parameter \"", name, "\" repeated"));
      seen[slot] = true;
      switch (slot) {
        case 0: auth.origin = *std::move(value); break;
        case 1: auth.destination = *std::move(value); break;
        case 2: auth.key_id = *std::move(value); break;
        case 3: auth.signature = *std::move(value); break;
      }
    }
    for (auto [slot, name] : {std::pair{0, "origin"}, {2, "key"}, {3, "sig"}}) {
      if (!seen[slot]) return Bad(absl::StrCat("parameter \"", name, "\" missing"));
    }
    if (auth.origin.empty()) return Bad("origin is empty");
    return auth;
  }

 private:
  void SkipWs() {
    while (pos_ < s_.size() && IsWs(s_[pos_])) ++pos_;
  }
  absl::Status BadAt(absl::string_view why) {
    return Bad(absl::StrCat(why, " at character ", pos_));
  }

  absl::StatusOr<std::string> ParseValue(absl::string_view name) {
    std::string value;
    if (pos_ < s_.size() && s_[pos_] == '"') {
      ++pos_;
      while (true) {
        if (pos_ >= s_.size()) {
          return Bad(absl::StrCat("unterminated quoted value of \"", name, "\""));
        }
        char c = s_[pos_];
        if (c == '"') {
          ++pos_;
          break;
        }
        if (c == '\\') {
          if (++pos_ >= s_.size()) {
            return Bad(absl::StrCat("dangling backslash in \"", name, "\""));
          }
          c = s_[pos_];
        }
        if (!IsQuotedChar(c)) {
          return BadAt(absl::StrCat("control character in the value of \"",
                                    name, "\""));
        }
        value += c;
        ++pos_;
      }
      return value;
    }
    while (pos_ < s_.size() && IsValueTokenChar(s_[pos_])) value += s_[pos_++];
    if (value.empty()) {
      return BadAt(absl::StrCat("expected a value for \"", name, "\""));
    }
    return value;
  }

  absl::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<XMatrixAuthorization> ParseXMatrixAuthorization(
    absl::string_view header) {
  return HeaderParser(header).Parse();
}

std::string FormatXMatrixAuthorization(const XMatrixAuthorization& auth) {
  // Always quoted, as in the spec's example.
  auto quote = [](absl::string_view v) {
    std::string out = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  };
  std::string out = absl::StrCat("X-Matrix origin=", quote(auth.origin));
  if (auth.destination) absl::StrAppend(&out, ",destination=", quote(*auth.destination));
  absl::StrAppend(&out, ",key=", quote(auth.key_id), ",sig=", quote(auth.signature));
  return out;
}

absl::StatusOr<std::string> RequestSigningBytes(const FederationRequest& request,
                                                absl::string_view origin) {
  Value obj = Value::Object();
  obj.Set("method", Value::String(request.method));
  obj.Set("uri", Value::String(request.uri));
  obj.Set("origin", Value::String(std::string(origin)));
  obj.Set("destination", Value::String(request.destination));
  if (!request.body.empty()) {
    absl::StatusOr<Value> content = ParseJson(request.body);
    if (!content.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("request body: ", content.status().message()));
    }
    obj.Set("content", *std::move(content));
  }
  // Request bodies may carry events of old room versions, which their senders
  // encode like any other JSON they sign: the legacy policy accepts them.
  absl::StatusOr<std::string> bytes = SigningBytes(obj, NumberPolicy::kLegacy);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request body: ", bytes.status().message()));
  }
  return bytes;
}

absl::StatusOr<RequestVerdict> VerifyFederationRequest(
    const XMatrixAuthorization& auth, const FederationRequest& request,
    absl::Span<const VerifyKey> origin_keys, int64_t now_ms) {
  RequestVerdict verdict;
  if (auth.destination && *auth.destination != request.destination) {
    verdict.reason = Reason::kDestinationMismatch;
    verdict.message = absl::StrCat("request is for \"", *auth.destination,
                                   "\", not \"", request.destination, "\"");
    return verdict;
  }
  absl::StatusOr<std::string> bytes = RequestSigningBytes(request, auth.origin);
  if (!bytes.ok()) return bytes.status();
  Value signatures = Value::Object();
  Value mine = Value::Object();
  mine.Set(auth.key_id, Value::String(auth.signature));
  signatures.Set(auth.origin, std::move(mine));
  KeyFilter usable = [now_ms](const VerifyKey& key) {
    return KeyUnusableForRequest(key, now_ms);
  };
  SignatureCheck c = CheckServerSignatures(&signatures, auth.origin, *bytes,
                                           origin_keys, usable);
  verdict.reason = c.reason;
  verdict.message = std::move(c.message);
  if (c.ok()) verdict.origin = auth.origin;
  return verdict;
}

absl::StatusOr<std::string> SignFederationRequest(
    const FederationRequest& request, absl::string_view origin,
    absl::string_view key_id, const Ed25519SigningKey& key) {
  absl::StatusOr<std::string> bytes = RequestSigningBytes(request, origin);
  if (!bytes.ok()) return bytes.status();
  XMatrixAuthorization auth;
  auth.origin = std::string(origin);
  auth.destination = request.destination;
  auth.key_id = std::string(key_id);
  auth.signature = EncodeBase64Unpadded(key.Sign(*bytes));
  return FormatXMatrixAuthorization(auth);
}

}  // namespace keyverifier::core
