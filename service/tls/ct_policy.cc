#include "service/tls/ct_policy.h"

#include <openssl/err.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace keyverifier::tls {
namespace {

using CtPolicyCtxPtr =
    std::unique_ptr<CT_POLICY_EVAL_CTX,
                    OpenSslDeleter<CT_POLICY_EVAL_CTX, CT_POLICY_EVAL_CTX_free>>;

struct SctListDeleter {
  void operator()(STACK_OF(SCT) * s) const { SCT_LIST_free(s); }
};
using SctListPtr = std::unique_ptr<STACK_OF(SCT), SctListDeleter>;

}  // namespace

void CtEvaluation::AddValidLog(std::string hex_id) {
  if (std::find(valid_logs.begin(), valid_logs.end(), hex_id) == valid_logs.end()) {
    valid_logs.push_back(std::move(hex_id));
  }
}

void CtEvaluation::Merge(CtEvaluation other) {
  embedded_scts += other.embedded_scts;
  unverified_scts += other.unverified_scts;
  for (std::string& id : other.valid_logs) AddValidLog(std::move(id));
}

absl::StatusOr<std::shared_ptr<const CtLogs>> CtLogs::FromFile(const std::string& path) {
  if (!std::ifstream(path)) {
    return absl::NotFoundError(absl::StrCat("cannot read CT log list ", path));
  }
  std::shared_ptr<CtLogs> logs(new CtLogs());
  logs->store_.reset(CTLOG_STORE_new());
  if (!logs->store_) return absl::InternalError("CTLOG_STORE_new failed");
  ERR_clear_error();
  if (CTLOG_STORE_load_file(logs->store_.get(), path.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("CT log list ", path, " is not usable: ", DrainOpenSslErrors()));
  }
  return std::shared_ptr<const CtLogs>(std::move(logs));
}

namespace {

// Validates every SCT of `scts` against `logs`; counts distinct valid logs.
CtEvaluation Evaluate(STACK_OF(SCT) * scts, X509* leaf, X509* issuer, const CtLogs& logs,
                      absl::Time at) {
  CtEvaluation out;
  out.embedded_scts = sk_SCT_num(scts);
  CtPolicyCtxPtr ctx(CT_POLICY_EVAL_CTX_new());
  if (!ctx || CT_POLICY_EVAL_CTX_set1_cert(ctx.get(), leaf) != 1 ||
      (issuer != nullptr && CT_POLICY_EVAL_CTX_set1_issuer(ctx.get(), issuer) != 1)) {
    out.unverified_scts = out.embedded_scts;
    ERR_clear_error();
    return out;
  }
  CT_POLICY_EVAL_CTX_set_shared_CTLOG_STORE(ctx.get(), logs.store());
  CT_POLICY_EVAL_CTX_set_time(ctx.get(), static_cast<uint64_t>(absl::ToUnixMillis(at)));
  // The return value only says whether all SCTs verified; each SCT carries
  // its own status.
  (void)SCT_LIST_validate(scts, ctx.get());
  for (int i = 0; i < out.embedded_scts; ++i) {
    SCT* sct = sk_SCT_value(scts, i);
    if (SCT_get_validation_status(sct) != SCT_VALIDATION_STATUS_VALID) {
      ++out.unverified_scts;
      continue;
    }
    unsigned char* id = nullptr;
    size_t len = SCT_get0_log_id(sct, &id);
    out.AddValidLog(
        absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(id), len)));
  }
  ERR_clear_error();
  return out;
}

}  // namespace

CtEvaluation EvaluateEmbeddedScts(X509* leaf, X509* issuer, const CtLogs& logs,
                                  absl::Time at) {
  SctListPtr scts(static_cast<STACK_OF(SCT)*>(
      X509_get_ext_d2i(leaf, NID_ct_precert_scts, nullptr, nullptr)));
  ERR_clear_error();
  if (!scts) return CtEvaluation{};
  return Evaluate(scts.get(), leaf, issuer, logs, at);
}

CtEvaluation EvaluateDeliveredScts(const std::vector<std::string>& sct_lists, X509* leaf,
                                   const CtLogs& logs, absl::Time at) {
  CtEvaluation out;
  for (const std::string& list : sct_lists) {
    const auto* p = reinterpret_cast<const unsigned char*>(list.data());
    SctListPtr scts(o2i_SCT_LIST(nullptr, &p, list.size()));
    if (!scts) {
      ++out.unverified_scts;
      ERR_clear_error();
      continue;
    }
    for (int i = 0; i < sk_SCT_num(scts.get()); ++i) {
      // Delivered in the handshake: signed over the certificate itself.
      SCT_set_source(sk_SCT_value(scts.get(), i), SCT_SOURCE_TLS_EXTENSION);
    }
    out.Merge(Evaluate(scts.get(), leaf, nullptr, logs, at));
  }
  return out;
}

}  // namespace keyverifier::tls
