// ServingCertificate and its watcher over an in-memory file system: what is
// checked, how errors name the file, and what a reload does.
#include "service/tls/serving_certificate.h"

#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/tls/test_pki.h"

namespace keyverifier::tls {
namespace {

class ServingCertificateTest : public ::testing::Test {
 protected:
  ServingCertificateTest()
      : pki_(testing::MakeHierarchy("keyverifier.test")),
        renewed_(testing::MakeHierarchy("keyverifier.test")) {
    Write(pki_);
    files_["ca.pem"] = pki_.root.Pem();
  }
  void Write(const testing::Hierarchy& h) {
    files_["cert.pem"] = h.leaf.Pem() + h.intermediate.Pem();
    files_["key.pem"] = testing::KeyPem(h.leaf);
  }
  io::ReadFile Reader() {
    return [this](const std::string& path) -> absl::StatusOr<std::string> {
      auto it = files_.find(path);
      if (it == files_.end()) return absl::NotFoundError(absl::StrCat("cannot open ", path));
      return it->second;
    };
  }
  absl::StatusOr<ServingCertificate> Load(const std::string& ca = "") {
    return LoadServingCertificate({"cert.pem", "key.pem", ca}, Reader());
  }

  testing::Hierarchy pki_;
  testing::Hierarchy renewed_;
  std::map<std::string, std::string> files_;
};

TEST_F(ServingCertificateTest, LoadsAMatchingPairAndDescribesTheLeaf) {
  absl::StatusOr<ServingCertificate> c = Load("ca.pem");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->fingerprint, Sha256FingerprintHex(pki_.leaf.cert.get()));
  EXPECT_EQ(c->not_after, Asn1ToTime(X509_get0_notAfter(pki_.leaf.cert.get())));
  EXPECT_EQ(c->ca_pem, pki_.root.Pem());
  EXPECT_EQ(c->chain_pem, files_["cert.pem"]);
  // The context serves it.
  absl::StatusOr<SslCtxPtr> ctx = NewServerContext(*c);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  X509* served = SSL_CTX_get0_certificate(ctx->get());
  ASSERT_NE(served, nullptr);
  EXPECT_EQ(Sha256FingerprintHex(served), c->fingerprint);
}

TEST_F(ServingCertificateTest, ErrorsNameTheFileAndWhatIsWrong) {
  struct Case {
    std::string file, text, ca, expected;
  };
  const std::string other_key = testing::KeyPem(renewed_.leaf);
  const Case cases[] = {
      {"key.pem", other_key, "",
       "key.pem: the private key does not belong to the first certificate of cert.pem"},
      {"key.pem", "not a key", "", "key.pem: no PEM private key"},
      {"cert.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "",
       "cert.pem: certificate 1 is not valid DER"},
      {"cert.pem", "", "", "cert.pem"},
      {"ca.pem", "garbage", "ca.pem", "ca.pem"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    std::map<std::string, std::string> saved = files_;
    files_[c.file] = c.text;
    absl::StatusOr<ServingCertificate> got = Load(c.ca);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
    EXPECT_TRUE(absl::StrContains(got.status().message(), c.expected)) << got.status();
    files_ = saved;
  }
  files_.erase("key.pem");
  EXPECT_EQ(Load().status().message(), "cannot open key.pem");
}

TEST_F(ServingCertificateTest, WatcherTakesRenewalsThatCheckOutAndKeepsTheLastGoodOne) {
  absl::StatusOr<ServingCertificateWatcher> w =
      ServingCertificateWatcher::Create({"cert.pem", "key.pem", ""}, Reader());
  ASSERT_TRUE(w.ok()) << w.status();
  const std::string first = w->current().fingerprint;
  EXPECT_EQ(w->Check(), ServingCertificateWatcher::Outcome::kUnchanged);

  // Half a renewal (the new key, the old chain) is refused; the old one stays.
  files_["key.pem"] = testing::KeyPem(renewed_.leaf);
  EXPECT_EQ(w->Check(), ServingCertificateWatcher::Outcome::kRefused);
  EXPECT_TRUE(absl::StrContains(w->error().message(), "does not belong")) << w->error();
  EXPECT_EQ(w->current().fingerprint, first);

  // The whole renewal is taken, once.
  Write(renewed_);
  EXPECT_EQ(w->Check(), ServingCertificateWatcher::Outcome::kChanged);
  EXPECT_TRUE(w->error().ok());
  EXPECT_EQ(w->current().fingerprint, Sha256FingerprintHex(renewed_.leaf.cert.get()));
  EXPECT_EQ(w->Check(), ServingCertificateWatcher::Outcome::kUnchanged);

  // Files gone: refused, still serving the renewed one.
  files_.clear();
  EXPECT_EQ(w->Check(), ServingCertificateWatcher::Outcome::kRefused);
  EXPECT_EQ(w->current().fingerprint, Sha256FingerprintHex(renewed_.leaf.cert.get()));
}

TEST_F(ServingCertificateTest, CreateFailsOnFilesThatDoNotCheckOut) {
  files_["key.pem"] = testing::KeyPem(renewed_.leaf);
  EXPECT_FALSE(ServingCertificateWatcher::Create({"cert.pem", "key.pem", ""}, Reader()).ok());
}

}  // namespace
}  // namespace keyverifier::tls
