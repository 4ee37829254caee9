// Certificate Transparency for the federation policy: the embedded SCTs of a
// leaf (RFC 6962 precertificate SCTs) checked against a configured set of
// logs with OpenSSL's CT API, and how many distinct logs vouch for it.
//
// Thread-safety: CtLogs is immutable after FromFile and may be shared; the
// evaluation is a pure function of its inputs. Errors (FromFile):
// NotFoundError for an unreadable file, InvalidArgumentError naming the file
// when it is not an OpenSSL CT log list or lists no log.
#ifndef KEYVERIFIER_SERVICE_TLS_CT_POLICY_H_
#define KEYVERIFIER_SERVICE_TLS_CT_POLICY_H_

#include <openssl/ct.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/tls/openssl_util.h"

namespace keyverifier::tls {

using CtLogStorePtr =
    std::unique_ptr<CTLOG_STORE, OpenSslDeleter<CTLOG_STORE, CTLOG_STORE_free>>;

class CtLogs {
 public:
  // OpenSSL's CT log list format (see CTLOG_STORE_load_file): an
  // "enabled_logs = a,b" line and, per log, a section with "key = <base64
  // SubjectPublicKeyInfo>".
  static absl::StatusOr<std::shared_ptr<const CtLogs>> FromFile(const std::string& path);

  CtLogs(const CtLogs&) = delete;
  CtLogs& operator=(const CtLogs&) = delete;

  CTLOG_STORE* store() const { return store_.get(); }

 private:
  CtLogs() = default;
  CtLogStorePtr store_;
};

struct CtEvaluation {
  int embedded_scts = 0;
  // Hex log ids with at least one SCT that verified, without duplicates.
  std::vector<std::string> valid_logs;
  // SCTs that did not verify: unknown log, bad signature, future timestamp.
  int unverified_scts = 0;

  void AddValidLog(std::string hex_id);
  // Adds another evaluation's counts and logs (a log counts once).
  void Merge(CtEvaluation other);
};

// `issuer` is the leaf's issuer from the verified chain (its key is part of
// what a log signs for a precertificate).
CtEvaluation EvaluateEmbeddedScts(X509* leaf, X509* issuer, const CtLogs& logs,
                                  absl::Time at);

// The same for SCTs the server delivered in the handshake (the
// signed_certificate_timestamp TLS extension or a stapled OCSP response):
// `sct_lists` holds SignedCertificateTimestampLists in TLS encoding; their
// SCTs are over the leaf as an X.509 entry. Lists that do not parse count as
// one unverified SCT each. The result's embedded_scts counts these SCTs.
CtEvaluation EvaluateDeliveredScts(const std::vector<std::string>& sct_lists, X509* leaf,
                                   const CtLogs& logs, absl::Time at);

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_CT_POLICY_H_
