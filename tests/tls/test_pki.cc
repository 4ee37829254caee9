#include "tests/tls/test_pki.h"

#include <openssl/ct.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keyverifier::tls::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "test PKI: %s: %s\n", what, DrainOpenSslErrors().c_str());
  std::abort();
}

void Check(bool ok, const char* what) {
  if (!ok) Die(what);
}

EvpPkeyPtr NewKey(const CertSpec& spec) {
  EVP_PKEY* key = spec.key_type == KeyType::kRsa
                      ? EVP_RSA_gen(static_cast<unsigned int>(spec.rsa_bits))
                      : EVP_EC_gen("P-256");
  Check(key != nullptr, "key generation");
  return EvpPkeyPtr(key);
}

void AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str());
  Check(ext != nullptr, OBJ_nid2sn(nid));
  Check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

void SetTime(ASN1_TIME* field, absl::Time t) {
  Check(ASN1_TIME_set(field, absl::ToTimeT(t)) != nullptr, "ASN1_TIME_set");
}

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace

absl::Time DefaultValidationTime() {
  return absl::FromCivil(absl::CivilSecond(2026, 1, 1, 0, 0, 0), absl::UTCTimeZone());
}

std::string TestCert::Pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_X509(bio.get(), cert.get()) == 1, "PEM_write_bio_X509");
  return BioString(bio.get());
}

std::string TestCert::Der() const { return ToDer(cert.get()); }

X509Ptr TestCert::Ref() const { return tls::Ref(cert.get()); }

std::string KeyPem(const TestCert& c) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_PrivateKey(bio.get(), c.key.get(), nullptr, nullptr, 0, nullptr,
                                 nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  return BioString(bio.get());
}

TestCert MakeCert(const CertSpec& spec, const TestCert* issuer) {
  TestCert out;
  if (spec.same_key_as != nullptr) {
    EVP_PKEY_up_ref(spec.same_key_as->key.get());
    out.key.reset(spec.same_key_as->key.get());
  } else {
    out.key = NewKey(spec);
  }
  out.cert.reset(X509_new());
  X509* cert = out.cert.get();
  Check(cert != nullptr, "X509_new");
  Check(X509_set_version(cert, X509_VERSION_3) == 1, "X509_set_version");

  unsigned char serial[16];
  Check(RAND_bytes(serial, sizeof(serial)) == 1, "RAND_bytes");
  serial[0] =
      static_cast<unsigned char>((serial[0] & 0x7f) | 0x01);  // positive, non-zero
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  Check(bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr,
        "serial");
  BN_free(bn);

  X509_NAME* name = X509_get_subject_name(cert);
  Check(X509_NAME_add_entry_by_txt(
            name, "CN", MBSTRING_UTF8,
            reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1,
            0) == 1,
        "subject");
  Check(X509_set_issuer_name(
            cert, issuer ? X509_get_subject_name(issuer->cert.get()) : name) == 1,
        "issuer");
  SetTime(X509_getm_notBefore(cert), spec.not_before);
  SetTime(X509_getm_notAfter(cert), spec.not_after);
  Check(X509_set_pubkey(cert, out.key.get()) == 1, "X509_set_pubkey");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer->cert.get() : cert, cert, nullptr, nullptr, 0);
  AddExtension(cert, &ctx, NID_basic_constraints,
               spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  AddExtension(cert, &ctx, NID_key_usage,
               spec.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  AddExtension(cert, &ctx, NID_subject_key_identifier, "hash");
  AddExtension(cert, &ctx, NID_authority_key_identifier, "keyid:always");
  if (!spec.eku.empty()) {
    AddExtension(cert, &ctx, NID_ext_key_usage, absl::StrJoin(spec.eku, ","));
  }
  std::vector<std::string> sans;
  for (const std::string& d : spec.dns_names) sans.push_back(absl::StrCat("DNS:", d));
  for (const std::string& ip : spec.ip_addresses) sans.push_back(absl::StrCat("IP:", ip));
  if (!sans.empty()) {
    AddExtension(cert, &ctx, NID_subject_alt_name, absl::StrJoin(sans, ","));
  }
  if (!spec.name_constraints.empty()) {
    AddExtension(cert, &ctx, NID_name_constraints, spec.name_constraints);
  }
  EVP_PKEY* signer = issuer ? issuer->key.get() : out.key.get();
  const EVP_MD* md = EVP_get_digestbyname(spec.digest.c_str());
  Check(md != nullptr, "digest");
  Check(X509_sign(cert, signer, md) > 0, "X509_sign");
  return out;
}

TestCert MakeRoot(const std::string& name) {
  CertSpec spec;
  spec.common_name = name;
  spec.is_ca = true;
  spec.eku.clear();
  spec.not_before =
      absl::FromCivil(absl::CivilSecond(2020, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  spec.not_after =
      absl::FromCivil(absl::CivilSecond(2040, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  return MakeCert(spec, nullptr);
}

TestCert MakeIntermediate(const std::string& name, const TestCert& issuer) {
  CertSpec spec;
  spec.common_name = name;
  spec.is_ca = true;
  spec.not_before =
      absl::FromCivil(absl::CivilSecond(2020, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  spec.not_after =
      absl::FromCivil(absl::CivilSecond(2035, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  return MakeCert(spec, &issuer);
}

TestCert MakeLeaf(std::vector<std::string> dns_names, const TestCert& issuer) {
  CertSpec spec;
  spec.common_name = dns_names.empty() ? "leaf" : dns_names[0];
  spec.dns_names = std::move(dns_names);
  return MakeCert(spec, &issuer);
}

Hierarchy MakeHierarchy(const std::string& dns_name) {
  Hierarchy h;
  h.root = MakeRoot("Test Root");
  h.intermediate = MakeIntermediate("Test Intermediate", h.root);
  h.leaf = MakeLeaf({dns_name}, h.intermediate);
  return h;
}

}  // namespace keyverifier::tls::testing

namespace keyverifier::tls::testing {
namespace {

std::string PublicKeyDer(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  Check(len > 0, "i2d_PUBKEY");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string Sha256Of(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

void PutInt(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

std::string SignSha256(EVP_PKEY* key, const std::string& data) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  size_t len = 0;
  Check(md != nullptr &&
            EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(md, nullptr, &len,
                           reinterpret_cast<const unsigned char*>(data.data()),
                           data.size()) == 1,
        "EVP_DigestSign");
  std::string sig(len, '\0');
  Check(EVP_DigestSign(md, reinterpret_cast<unsigned char*>(&sig[0]), &len,
                       reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) == 1,
        "EVP_DigestSign");
  EVP_MD_CTX_free(md);
  sig.resize(len);
  return sig;
}

// One v1 SCT from `log` over `entry` (the signed entry after its type: for
// a precertificate the issuer key hash and TBS, for an X.509 entry the
// certificate), as RFC 6962 section 3.2 lays out the signed data.
SCT* SignedSct(const CtLog& log, ct_log_entry_type_t entry_type, const std::string& entry,
               uint64_t timestamp, bool corrupt_signature) {
  std::string signed_data;
  PutInt(&signed_data, 0, 1);  // version v1
  PutInt(&signed_data, 0, 1);  // certificate_timestamp
  PutInt(&signed_data, timestamp, 8);
  PutInt(&signed_data, entry_type == CT_LOG_ENTRY_TYPE_PRECERT ? 1 : 0, 2);
  signed_data += entry;
  PutInt(&signed_data, 0, 2);  // no extensions
  std::string sig = SignSha256(log.key.get(), signed_data);
  if (corrupt_signature) sig[sig.size() / 2] ^= 0x01;
  std::string log_id = Sha256Of(PublicKeyDer(log.key.get()));
  SCT* sct = SCT_new();
  Check(sct != nullptr && SCT_set_version(sct, SCT_VERSION_V1) == 1 &&
            SCT_set_log_entry_type(sct, entry_type) == 1 &&
            SCT_set1_log_id(sct, reinterpret_cast<const unsigned char*>(log_id.data()),
                            log_id.size()) == 1 &&
            SCT_set_signature_nid(sct, NID_ecdsa_with_SHA256) == 1 &&
            SCT_set1_signature(sct, reinterpret_cast<const unsigned char*>(sig.data()),
                               sig.size()) == 1,
        "SCT");
  SCT_set_timestamp(sct, timestamp);
  return sct;
}

}  // namespace

CtLog MakeCtLog(const std::string& name) {
  CtLog log;
  log.name = name;
  log.key.reset(EVP_EC_gen("P-256"));
  Check(log.key != nullptr, "CT log key");
  return log;
}

std::string CtLogList(const std::vector<const CtLog*>& logs) {
  std::vector<std::string> names;
  for (const CtLog* l : logs) names.push_back(l->name);
  std::string out = absl::StrCat("enabled_logs = ", absl::StrJoin(names, ","), "\n");
  for (const CtLog* l : logs) {
    absl::StrAppend(&out, "\n[", l->name, "]\ndescription = ", l->name,
                    "\nkey = ", absl::Base64Escape(PublicKeyDer(l->key.get())), "\n");
  }
  return out;
}

TestCert MakeCertWithScts(const CertSpec& spec, const TestCert& issuer,
                          const std::vector<const CtLog*>& logs, absl::Time sct_time,
                          bool corrupt_signatures) {
  // Signed once so that the TBS carries its signature algorithm, which the
  // logs sign over; the SCT list is then added and the certificate re-signed.
  TestCert out = MakeCert(spec, &issuer);
  unsigned char* tbs_der = nullptr;
  int tbs_len = i2d_re_X509_tbs(out.cert.get(), &tbs_der);
  Check(tbs_len > 0, "i2d_re_X509_tbs");
  std::string tbs(reinterpret_cast<char*>(tbs_der), static_cast<size_t>(tbs_len));
  OPENSSL_free(tbs_der);
  std::string issuer_key_hash = Sha256Of(PublicKeyDer(issuer.key.get()));
  uint64_t timestamp = static_cast<uint64_t>(absl::ToUnixMillis(sct_time));

  std::string entry = issuer_key_hash;
  PutInt(&entry, tbs.size(), 3);
  entry += tbs;
  STACK_OF(SCT)* scts = sk_SCT_new_null();
  for (const CtLog* log : logs) {
    sk_SCT_push(scts, SignedSct(*log, CT_LOG_ENTRY_TYPE_PRECERT, entry, timestamp,
                                corrupt_signatures));
  }
  Check(X509_add1_ext_i2d(out.cert.get(), NID_ct_precert_scts, scts, 0,
                          X509V3_ADD_DEFAULT) == 1,
        "SCT list extension");
  SCT_LIST_free(scts);
  const EVP_MD* md = EVP_get_digestbyname(spec.digest.c_str());
  Check(X509_sign(out.cert.get(), issuer.key.get(), md) > 0, "X509_sign");
  return out;
}

std::string TlsExtensionSctList(const TestCert& cert, const std::vector<const CtLog*>& logs,
                                absl::Time sct_time) {
  const std::string der = cert.Der();
  uint64_t timestamp = static_cast<uint64_t>(absl::ToUnixMillis(sct_time));
  std::string entry;
  PutInt(&entry, der.size(), 3);
  entry += der;
  STACK_OF(SCT)* scts = sk_SCT_new_null();
  for (const CtLog* log : logs) {
    sk_SCT_push(scts, SignedSct(*log, CT_LOG_ENTRY_TYPE_X509, entry, timestamp, false));
  }
  unsigned char* out = nullptr;
  int len = i2o_SCT_LIST(scts, &out);
  SCT_LIST_free(scts);
  Check(len > 0, "i2o_SCT_LIST");
  std::string list(reinterpret_cast<char*>(out), static_cast<size_t>(len));
  OPENSSL_free(out);
  return list;
}

}  // namespace keyverifier::tls::testing
