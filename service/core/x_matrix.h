// Federation request authentication (server-server API "Request
// Authentication"): the `Authorization: X-Matrix ...` header and the signed
// request object {method, uri, origin, destination, content}.
//
// Header grammar (RFC 9110 section 11.4 as the spec profiles it): scheme
// `X-Matrix` (case-insensitive), one or more spaces, then comma-separated
// name=value parameters. Names are case-insensitive. Values are tokens or
// quoted strings with backslash escapes (control characters other than tab are
// refused); unquoted values may also contain colons and brackets, as older
// senders wrote server names unquoted. Spaces and tabs are allowed around
// commas and around "="; empty list elements and unknown parameters are
// ignored; a repeated parameter is an error. The parameters used are origin,
// destination (optional), key and sig.
//
// Pure and thread-safe. Parse errors are InvalidArgumentError naming the
// parameter or position; a signature that does not verify is a verdict.
#ifndef KEYVERIFIER_SERVICE_CORE_X_MATRIX_H_
#define KEYVERIFIER_SERVICE_CORE_X_MATRIX_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "service/core/crypto.h"
#include "service/core/signed_json.h"
#include "service/core/verify_key.h"

namespace keyverifier::core {

struct XMatrixAuthorization {
  std::string origin;
  std::optional<std::string> destination;  // optional for older senders
  std::string key_id;
  std::string signature;  // unpadded base64, as sent
};

absl::StatusOr<XMatrixAuthorization> ParseXMatrixAuthorization(
    absl::string_view header);

// Formats a header the way the spec asks senders to (lower-case names, no
// extra whitespace).
std::string FormatXMatrixAuthorization(const XMatrixAuthorization& auth);

struct FederationRequest {
  std::string method;       // "GET", "PUT", ...
  std::string uri;          // path and query, starting with /_matrix/
  std::string destination;  // the receiving server's own name
  std::string body;         // request body; empty for none
};

// The canonical bytes the origin signs for `request` (request.destination is
// used as the signed destination). Fails if the body is not JSON.
absl::StatusOr<std::string> RequestSigningBytes(const FederationRequest& request,
                                                absl::string_view origin);

struct RequestVerdict {
  Reason reason = Reason::kOk;  // kOk: authenticated
  std::string origin;           // the authenticated origin when ok
  std::string message;
  bool ok() const { return reason == Reason::kOk; }
};

// Verifies one Authorization header against `request`, with the origin's
// known keys. Fails (InvalidArgumentError) only if the body is not JSON.
absl::StatusOr<RequestVerdict> VerifyFederationRequest(
    const XMatrixAuthorization& auth, const FederationRequest& request,
    absl::Span<const VerifyKey> origin_keys, int64_t now_ms);

// The sender's side, for tests and tools: the header for `request`.
absl::StatusOr<std::string> SignFederationRequest(
    const FederationRequest& request, absl::string_view origin,
    absl::string_view key_id, const Ed25519SigningKey& key);

}  // namespace keyverifier::core

#endif  // KEYVERIFIER_SERVICE_CORE_X_MATRIX_H_
