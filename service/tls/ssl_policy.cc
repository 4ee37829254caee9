#include "service/tls/ssl_policy.h"

#include <openssl/err.h>

#include <vector>

#include "absl/strings/str_cat.h"

namespace keyverifier::tls {
namespace {

// The SSL ex_data slot holding the connection's ConnectionCheck; allocated
// once per process (OpenSSL's indices are process-wide).
int CheckIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int VerifyWithPolicy(X509_STORE_CTX* store_ctx, void* arg) {
  const auto* policy = static_cast<const CertificatePolicy*>(arg);
  SSL* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* check =
      ssl ? static_cast<ConnectionCheck*>(SSL_get_ex_data(ssl, CheckIndex())) : nullptr;
  if (check == nullptr) {
    // A connection without PrepareConnection has no name to check against.
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  std::vector<X509Ptr> chain;
  if (X509* leaf = X509_STORE_CTX_get0_cert(store_ctx)) chain.push_back(Ref(leaf));
  STACK_OF(X509)* untrusted = X509_STORE_CTX_get0_untrusted(store_ctx);
  for (int i = 0; i < sk_X509_num(untrusted); ++i) {
    X509* c = sk_X509_value(untrusted, i);
    if (!chain.empty() && X509_cmp(c, chain[0].get()) == 0) continue;  // the leaf again
    chain.push_back(Ref(c));
  }
  CheckContext context;
  context.tls_fingerprints = check->tls_fingerprints;
  context.negotiated_tls_version = SSL_version(ssl);
  check->verdict = policy->Check(chain, check->peer, check->at, context);
  check->checked = true;
  if (check->verdict.valid) return 1;
  X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

}  // namespace

absl::Status ApplyPolicy(const CertificatePolicy& policy, SSL_CTX* ctx) {
  int version = policy.options().min_tls_version;
  if (SSL_CTX_set_min_proto_version(ctx, version) != 1) {
    return absl::InternalError(absl::StrCat("SSL_CTX_set_min_proto_version(0x",
                                            absl::Hex(version),
                                            ") failed: ", DrainOpenSslErrors()));
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, VerifyWithPolicy,
                                   const_cast<CertificatePolicy*>(&policy));
  return absl::OkStatus();
}

absl::Status PrepareConnection(SSL* ssl, ConnectionCheck* check) {
  if (CheckIndex() < 0) return absl::InternalError("no SSL ex_data index");
  check->checked = false;
  check->verdict = Verdict();
  if (SSL_set_ex_data(ssl, CheckIndex(), check) != 1) {
    return absl::InternalError("SSL_set_ex_data failed");
  }
  if (!check->peer.is_ip() &&
      SSL_set_tlsext_host_name(ssl, check->peer.text.c_str()) != 1) {
    return absl::InternalError(absl::StrCat("cannot set SNI \"", check->peer.text,
                                            "\": ", DrainOpenSslErrors()));
  }
  return absl::OkStatus();
}

}  // namespace keyverifier::tls
