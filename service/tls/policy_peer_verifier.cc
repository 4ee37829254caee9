#include "service/tls/policy_peer_verifier.h"

#include <openssl/ct.h>
#include <openssl/ssl.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keyverifier::tls {

std::string ReasonsText(const Verdict& verdict) {
  std::vector<std::string> parts;
  for (const Finding& f : verdict.reasons) {
    parts.push_back(absl::StrCat(ReasonName(f.reason), ": ", f.message));
  }
  return absl::StrJoin(parts, "; ");
}

absl::Status PolicyPeerVerifier::VerifyPeer(const std::vector<std::string>& chain_der,
                                            const std::vector<std::string>& delivered_scts,
                                            absl::string_view expected_name) const {
  absl::StatusOr<PeerName> peer = PeerName::Parse(expected_name);
  if (!peer.ok()) return absl::PermissionDeniedError(peer.status().message());
  absl::StatusOr<std::vector<X509Ptr>> chain = ParseChain(chain_der, "peer certificate");
  if (!chain.ok()) return absl::PermissionDeniedError(chain.status().message());
  CheckContext context;
  context.delivered_scts = delivered_scts;
  if (fingerprints_) {
    context.fingerprint_source = [&] { return fingerprints_(expected_name); };
  }
  const Verdict verdict = policy_.Check(*chain, *peer, clock_.Now(), context);
  observer_.OnPeerCertificateVerdict(expected_name, verdict.valid);
  if (verdict.valid && verdict.rule == AppliedRule::kFingerprintFallback) {
    observer_.OnCertificateFallback(expected_name);
  }
  if (verdict.Has(Reason::kCtPolicyUnmet) ||
      std::any_of(verdict.warnings.begin(), verdict.warnings.end(),
                  [](const Finding& f) { return f.reason == Reason::kCtPolicyUnmet; })) {
    observer_.OnCtPolicyUnmet(expected_name);
  }
  if (verdict.valid) return absl::OkStatus();
  return absl::PermissionDeniedError(ReasonsText(verdict));
}

namespace {

// The policy judges SCTs itself (VerifyPeer); OpenSSL's own check, which
// setting a callback turns on, must never refuse a connection.
int AcceptScts(const CT_POLICY_EVAL_CTX*, const STACK_OF(SCT)*, void*) { return 1; }

}  // namespace

absl::Status PolicyPeerVerifier::ConfigureContext(SSL_CTX* ctx) const {
  if (SSL_CTX_set_min_proto_version(ctx, policy_.options().min_tls_version) != 1) {
    return absl::InternalError("could not set the minimum TLS version");
  }
  if (policy_.options().ct_mode != CtMode::kOff &&
      SSL_CTX_set_ct_validation_callback(ctx, AcceptScts, nullptr) != 1) {
    return absl::InternalError("could not ask for Certificate Transparency SCTs");
  }
  return absl::OkStatus();
}

}  // namespace keyverifier::tls
