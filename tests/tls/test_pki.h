// A throwaway PKI built at test time with OpenSSL: roots, intermediates and
// leaves with the names, validity, EKUs, keys and digests a test asks for.
// For the certificate policy's unit tests and for live TLS tests.
//
// Thread-compatible (each call creates new objects). Errors: a failure to
// build a certificate is a programming error in the test; it aborts with
// OpenSSL's reason rather than returning a Status.
#ifndef KEYVERIFIER_TESTS_TLS_TEST_PKI_H_
#define KEYVERIFIER_TESTS_TLS_TEST_PKI_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "service/tls/openssl_util.h"

namespace keyverifier::tls::testing {

enum class KeyType { kEcP256, kRsa };

struct CertSpec {
  std::string common_name = "test";
  std::vector<std::string> dns_names;     // subjectAltName dNSName
  std::vector<std::string> ip_addresses;  // subjectAltName iPAddress
  bool is_ca = false;
  // extendedKeyUsage values as OpenSSL config names ("serverAuth");
  // empty leaves the extension out.
  std::vector<std::string> eku = {"serverAuth"};
  // OpenSSL config text for nameConstraints ("critical,excluded;DNS:x"),
  // empty for none.
  std::string name_constraints;
  absl::Time not_before =
      absl::FromCivil(absl::CivilSecond(2025, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  absl::Time not_after =
      absl::FromCivil(absl::CivilSecond(2027, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  KeyType key_type = KeyType::kEcP256;
  int rsa_bits = 2048;
  // The issuer signs with this digest ("SHA256", "SHA1").
  std::string digest = "SHA256";
  // Certify this certificate's key instead of a new one (cross-signing).
  const struct TestCert* same_key_as = nullptr;
};

// Inside the default validity period.
absl::Time DefaultValidationTime();

struct TestCert {
  X509Ptr cert;
  EvpPkeyPtr key;

  std::string Pem() const;
  std::string Der() const;
  X509Ptr Ref() const;
};

// Signed by `issuer`, or self-signed when `issuer` is null.
TestCert MakeCert(const CertSpec& spec, const TestCert* issuer);

// Shorthands.
TestCert MakeRoot(const std::string& name);
TestCert MakeIntermediate(const std::string& name, const TestCert& issuer);
TestCert MakeLeaf(std::vector<std::string> dns_names, const TestCert& issuer);

// The usual three-level PKI: root -> intermediate -> leaf for `dns_name`.
struct Hierarchy {
  TestCert root;
  TestCert intermediate;
  TestCert leaf;
};
Hierarchy MakeHierarchy(const std::string& dns_name);

// The private key in PEM (PKCS#8), for servers.
std::string KeyPem(const TestCert& c);

// A Certificate Transparency log: its key and name.
struct CtLog {
  std::string name;
  EvpPkeyPtr key;  // P-256
};
CtLog MakeCtLog(const std::string& name);

// OpenSSL's CT log list text (CTLOG_STORE_load_file) naming these logs.
std::string CtLogList(const std::vector<const CtLog*>& logs);

// Like MakeCert, with embedded precertificate SCTs (RFC 6962) from each of
// `logs`, timestamped `sct_time`. With `corrupt_signatures`, every SCT's
// signature is made invalid.
TestCert MakeCertWithScts(const CertSpec& spec, const TestCert& issuer,
                          const std::vector<const CtLog*>& logs, absl::Time sct_time,
                          bool corrupt_signatures = false);

// A SignedCertificateTimestampList (RFC 6962, TLS encoding) of X.509-entry
// SCTs over `cert` from each of `logs`: what a server sends in the
// signed_certificate_timestamp TLS extension.
std::string TlsExtensionSctList(const TestCert& cert, const std::vector<const CtLog*>& logs,
                                absl::Time sct_time);

}  // namespace keyverifier::tls::testing

#endif  // KEYVERIFIER_TESTS_TLS_TEST_PKI_H_
