// Owning wrappers for the OpenSSL objects the TLS policy uses, and parsing of
// certificates from PEM or DER.
//
// Thread-safety: the wrappers are plain unique_ptrs (one owner at a time);
// the parse functions are thread-safe. Errors: InvalidArgumentError naming
// what could not be parsed (which certificate of the input, OpenSSL's reason).
#ifndef KEYVERIFIER_SERVICE_TLS_OPENSSL_UTIL_H_
#define KEYVERIFIER_SERVICE_TLS_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace keyverifier::tls {

template <typename T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};

using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509, X509_free>>;
using X509StorePtr =
    std::unique_ptr<X509_STORE, OpenSslDeleter<X509_STORE, X509_STORE_free>>;
using X509StoreCtxPtr =
    std::unique_ptr<X509_STORE_CTX, OpenSslDeleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO, BIO_free_all>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OpenSslDeleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, OpenSslDeleter<SSL, SSL_free>>;
using GeneralNamesPtr =
    std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES, GENERAL_NAMES_free>>;

// A STACK_OF(X509) that does not own its certificates (they stay owned by
// X509Ptrs elsewhere); for handing untrusted chains to X509_STORE_CTX.
struct X509StackViewDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
using X509StackView = std::unique_ptr<STACK_OF(X509), X509StackViewDeleter>;

// A new reference to `cert` (X509_up_ref).
X509Ptr Ref(X509* cert);

// All certificates of `data`: one or more PEM blocks ("CERTIFICATE"), or a
// single DER certificate. Text around PEM blocks is ignored. `what` names the
// input in errors ("--chain chain.pem"). An input without any certificate is
// an error.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(absl::string_view data,
                                                       absl::string_view what);

// ParseCertificates over each of `parts` (PEM or DER), in order, as one
// chain; errors name the part ("what[1]").
absl::StatusOr<std::vector<X509Ptr>> ParseChain(const std::vector<std::string>& parts,
                                                absl::string_view what);

// DER encoding of `cert`.
std::string ToDer(X509* cert);

// Lower-case hex SHA-256 of the DER encoding.
std::string Sha256FingerprintHex(X509* cert);

// RFC 2253 form of a name ("CN=example.org,O=Example").
std::string NameToString(const X509_NAME* name);

// An ASN1_TIME as absl::Time; InfinitePast() if it cannot be read.
absl::Time Asn1ToTime(const ASN1_TIME* t);

// The queued OpenSSL errors as text (and clears the queue); "" if none.
std::string DrainOpenSslErrors();

}  // namespace keyverifier::tls

#endif  // KEYVERIFIER_SERVICE_TLS_OPENSSL_UTIL_H_
