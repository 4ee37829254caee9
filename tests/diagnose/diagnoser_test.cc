// The Diagnoser's observing, with fakes at every seam (DNS, .well-known,
// HTTP per address, a notary, the key store) and the real discovery,
// federation client and certificate policy (over a test PKI): what it
// asks, in what order, and what lands in the report.
#include "service/diagnose/diagnoser.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "service/core/server_keys.h"
#include "service/net/discovery.h"
#include "service/net/federation_client.h"
#include "service/net/ip_filter.h"
#include "service/store/memory_key_store.h"
#include "service/tls/certificate_checker.h"
#include "service/tls/certificate_policy.h"
#include "service/tls/trust_store.h"
#include "tests/fakes/fake_clock.h"
#include "tests/fakes/fake_fetcher.h"
#include "tests/fakes/fake_net.h"
#include "tests/testing/key_fixtures.h"
#include "tests/tls/test_pki.h"

namespace keyverifier::diagnose {
namespace {

using keyverifier::testing::FakeClock;
using keyverifier::testing::FakeResolver;
using keyverifier::testing::FakeWellKnownFetcher;
using keyverifier::testing::KeyResponseJson;
using keyverifier::testing::ScriptedFetcher;
using keyverifier::testing::ServerKeysSpec;

constexpr int64_t kDayMs = 24 * 3600 * 1000;

// FakeResolver that also knows CNAME chains.
class CnameResolver : public FakeResolver {
 public:
  void AddCnames(const std::string& host, std::vector<std::string> chain) {
    absl::MutexLock lock(&mu_);
    cnames_[host] = std::move(chain);
  }
  void LookupCnames(absl::string_view host, absl::Time,
                    async::Callback<std::vector<std::string>> done) override {
    std::vector<std::string> chain;
    {
      absl::MutexLock lock(&mu_);
      if (auto it = cnames_.find(std::string(host)); it != cnames_.end()) chain = it->second;
    }
    done(std::move(chain));
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::vector<std::string>> cnames_ ABSL_GUARDED_BY(mu_);
};

// Answers per address: the chain a handshake presents, the key response
// served, the version; dead addresses refuse. Records every request.
class AddressHttp : public net::HttpClient {
 public:
  std::map<std::string, std::vector<std::string>> chains;  // endpoint -> DER chain
  std::map<std::string, std::string> keys;                  // endpoint -> body
  std::set<std::string> dead;
  int version_status = 200;
  std::string version_body = R"({"server": {"name": "Synapse", "version": "1.99.0"}})";

  void Send(const net::HttpRequest& req, absl::Time,
            async::Callback<net::HttpResponse> done) override {
    const std::string endpoint = req.connect_to.ToString();
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(absl::StrCat(req.handshake_only ? "handshake " : "GET ", endpoint, " ",
                                       req.host_header, " ", req.tls_name, " ", req.path));
    }
    if (dead.count(endpoint) != 0) {
      return done(absl::UnavailableError(absl::StrCat(endpoint, ": connection refused")));
    }
    net::HttpResponse r;
    r.endpoint = endpoint;
    r.tls_name = req.tls_name;
    r.tls_version = "TLSv1.3";
    r.tls_cipher = "TLS_AES_128_GCM_SHA256";
    r.peer_chain_der = chains[endpoint];
    if (req.handshake_only) return done(std::move(r));
    if (req.path == "/_matrix/key/v2/server" && keys.count(endpoint) != 0) {
      r.status = 200;
      r.body = keys[endpoint];
    } else if (req.path == "/_matrix/federation/v1/version") {
      r.status = version_status;
      r.body = version_body;
    } else {
      r.status = 404;
      r.body = R"({"errcode": "M_UNRECOGNIZED"})";
    }
    done(std::move(r));
  }
  std::vector<std::string> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

core::ServerKeys Parsed(const std::string& json) {
  absl::StatusOr<core::ServerKeys> k = core::ParseServerKeys(json);
  EXPECT_TRUE(k.ok()) << k.status();
  return *k;
}

class DiagnoserTest : public ::testing::Test {
 protected:
  DiagnoserTest()
      : clock_(tls::testing::DefaultValidationTime()),
        filter_(*net::IpFilter::Create({false, {}, {}, {}})),
        discovery_(resolver_, well_known_, filter_, clock_, {}),
        federation_(discovery_, http_),
        notary_("notary.example"),
        pki_(tls::testing::MakeHierarchy("m.example.org")) {
    tls::CertificatePolicyOptions o;
    std::vector<tls::X509Ptr> roots;
    roots.push_back(pki_.root.Ref());
    o.trust_store = *tls::TrustStore::FromCertificates(std::move(roots));
    policy_ = *tls::CertificatePolicy::Create(o);
    checker_ = std::make_unique<tls::CertificateChecker>(*policy_, &federation_, clock_);
    store_ = *store::MemoryKeyStore::Create();
    diagnoser_ = std::make_unique<Diagnoser>(Deps(), Diagnoser::Options());
  }

  // Every seam the diagnoser has, faked (the notary among them).
  Diagnoser::Deps Deps() {
    Diagnoser::Deps deps;
    deps.discovery = &discovery_;
    deps.well_known = &well_known_;
    deps.resolver = &resolver_;
    deps.http = &http_;
    deps.federation = &federation_;
    deps.checker = checker_.get();
    deps.notaries = {&notary_};
    deps.store = store_.get();
    deps.clock = &clock_;
    return deps;
  }

  int64_t now_ms() const { return absl::ToUnixMillis(clock_.Now()); }
  absl::Time deadline() const { return clock_.Now() + absl::Seconds(30); }

  FakeClock clock_;
  CnameResolver resolver_;
  FakeWellKnownFetcher well_known_;
  AddressHttp http_;
  net::IpFilter filter_;
  net::ServerDiscovery discovery_;
  net::FederationClient federation_;
  ScriptedFetcher notary_;
  tls::testing::Hierarchy pki_;
  std::unique_ptr<tls::CertificatePolicy> policy_;
  std::unique_ptr<tls::CertificateChecker> checker_;
  std::unique_ptr<store::KeyStore> store_;
  std::unique_ptr<Diagnoser> diagnoser_;
};

TEST_F(DiagnoserTest, ReportsEveryStepOfADelegatedServerWithTwoAddresses) {
  well_known_.Set("example.org", 200, R"({"m.server": "m.example.org"})", "max-age=3600");
  resolver_.AddSrv("_matrix-fed._tcp.m.example.org", {{"host.example.net", 8448, 0, 10}});
  resolver_.AddCnames("host.example.net", {"host.example.net -> real.example.net"});
  resolver_.AddHost("host.example.net", {"192.0.2.1", "192.0.2.2"});
  const std::string a = "192.0.2.1:8448", b = "192.0.2.2:8448";
  http_.chains[a] = {pki_.leaf.Der(), pki_.intermediate.Der()};
  http_.chains[b] = {pki_.leaf.Der()};  // no intermediate: the chain cannot be built
  const std::string served =
      KeyResponseJson(ServerKeysSpec("example.org", {{"ed25519:a", 'a'}}, now_ms() + kDayMs));
  http_.keys[a] = served;
  http_.keys[b] = served;
  notary_.SetFor("example.org", Parsed(served));
  // The store saw ed25519:a and ed25519:gone before.
  ASSERT_TRUE(store_
                  ->StoreResponse(Parsed(KeyResponseJson(ServerKeysSpec(
                                      "example.org", {{"ed25519:a", 'a'}, {"ed25519:gone", 'g'}},
                                      now_ms()))),
                                  "example.org", now_ms() - kDayMs)
                  .ok());

  absl::StatusOr<v1::DiagnoseServerResponse> r =
      diagnoser_->DiagnoseAndWait("example.org", deadline());
  ASSERT_TRUE(r.ok()) << r.status();

  const v1::DiagnoseDiscovery& d = r->discovery();
  EXPECT_TRUE(d.well_known().attempted());
  EXPECT_EQ(d.well_known().http_status(), 200);
  EXPECT_EQ(d.well_known().delegated_server(), "m.example.org");
  EXPECT_EQ(d.well_known().cache_seconds(), 3600);
  EXPECT_EQ(d.well_known().cache_control(), "max-age=3600");
  EXPECT_EQ(d.srv_host(), "m.example.org");
  ASSERT_EQ(d.srv_size(), 2);
  EXPECT_EQ(d.srv(0).name(), "_matrix-fed._tcp.m.example.org");
  EXPECT_TRUE(d.srv(0).found());
  ASSERT_EQ(d.srv(0).targets_size(), 1);
  EXPECT_EQ(d.srv(0).targets(0).port(), 8448u);
  EXPECT_EQ(d.srv(0).targets(0).addresses_size(), 2);
  ASSERT_EQ(d.srv(0).targets(0).cname_chain_size(), 1);
  EXPECT_EQ(d.srv(1).name(), "_matrix._tcp.m.example.org");
  EXPECT_FALSE(d.srv(1).found());
  EXPECT_TRUE(d.srv(1).error().empty());  // not found is no error
  EXPECT_EQ(d.host_header(), "m.example.org");
  EXPECT_EQ(d.tls_name(), "m.example.org");
  EXPECT_EQ(std::vector<std::string>(d.endpoints().begin(), d.endpoints().end()),
            (std::vector<std::string>{a, b}));

  ASSERT_EQ(r->addresses_size(), 2);
  const v1::DiagnoseAddress& first = r->addresses(0);
  EXPECT_EQ(first.tls_version(), "TLSv1.3");
  EXPECT_EQ(first.tls_cipher(), "TLS_AES_128_GCM_SHA256");
  EXPECT_TRUE(first.certificate_valid());
  EXPECT_EQ(first.certificate_rule(), "chain_verified");
  EXPECT_EQ(first.certificate_names(0), "m.example.org");
  EXPECT_GT(first.certificate_days_left(), 0);
  ASSERT_EQ(first.verify_keys_size(), 1);
  EXPECT_EQ(first.verify_keys(0).key_id(), "ed25519:a");
  const v1::DiagnoseAddress& second = r->addresses(1);
  EXPECT_FALSE(second.certificate_valid());
  ASSERT_GT(second.certificate_reasons_size(), 0);

  EXPECT_TRUE(r->keys().valid());
  EXPECT_EQ(r->keys().endpoint(), a);
  EXPECT_EQ(r->keys().signed_by(0), "ed25519:a");
  EXPECT_TRUE(r->keys().addresses_agree());
  EXPECT_EQ(r->keys().history_size(), 2);
  ASSERT_EQ(r->keys().vanished_key_ids_size(), 1);
  EXPECT_EQ(r->keys().vanished_key_ids(0), "ed25519:gone");
  ASSERT_EQ(r->notaries_size(), 1);
  EXPECT_TRUE(r->notaries(0).answered());
  EXPECT_TRUE(r->notaries(0).agrees_with_direct());
  EXPECT_EQ(notary_.last_request().server_name.str(), "example.org");
  EXPECT_TRUE(r->version().answered());
  EXPECT_EQ(r->version().name(), "Synapse");
  EXPECT_EQ(r->version().version(), "1.99.0");

  std::set<std::string> codes;
  for (const v1::DiagnoseFinding& f : r->findings()) codes.insert(f.code());
  EXPECT_EQ(codes, (std::set<std::string>{"certificate_invalid", "srv_target_cname",
                                          "keys_vanished"}));
  EXPECT_FALSE(r->federation_ok());
  EXPECT_EQ(r->findings(0).code(), "certificate_invalid");
  EXPECT_NE(r->findings(0).message().find(b), std::string::npos);

  // Each address got a handshake and a key request of its own, with the
  // delegated name as Host and certificate name.
  std::vector<std::string> requests = http_.requests();
  for (const std::string& e : {a, b}) {
    for (const char* kind : {"handshake ", "GET "}) {
      const std::string want =
          absl::StrCat(kind, e, " m.example.org m.example.org /_matrix/key/v2/server");
      EXPECT_NE(std::find(requests.begin(), requests.end(), want), requests.end()) << want;
    }
  }
}

TEST_F(DiagnoserTest, AnIpLiteralWithPortLooksUpNoWellKnownAndNoSrv) {
  const std::string e = "192.0.2.7:8448";
  http_.keys[e] = KeyResponseJson(
      ServerKeysSpec("192.0.2.7:8448", {{"ed25519:a", 'a'}}, now_ms() + kDayMs));
  notary_.answer_ = absl::UnavailableError("notary down");
  absl::StatusOr<v1::DiagnoseServerResponse> r =
      diagnoser_->DiagnoseAndWait("192.0.2.7:8448", deadline());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->discovery().well_known().attempted());
  EXPECT_EQ(r->discovery().srv_size(), 0);
  EXPECT_EQ(well_known_.fetches("192.0.2.7"), 0);
  EXPECT_TRUE(resolver_.lookups().empty());
  ASSERT_EQ(r->addresses_size(), 1);
  EXPECT_EQ(r->addresses(0).endpoint(), e);
  EXPECT_TRUE(r->keys().valid());
  EXPECT_FALSE(r->notaries(0).answered());
  EXPECT_NE(r->notaries(0).error().find("notary down"), std::string::npos);
  std::set<std::string> codes;
  for (const v1::DiagnoseFinding& f : r->findings()) codes.insert(f.code());
  EXPECT_TRUE(codes.count("notary_failed")) << r->DebugString();
  // No chain presented (the fake sends none): the certificate is refused.
  EXPECT_TRUE(codes.count("certificate_invalid"));
}

TEST_F(DiagnoserTest, AServerWithoutAddressesIsAReportSayingSo) {
  absl::StatusOr<v1::DiagnoseServerResponse> r =
      diagnoser_->DiagnoseAndWait("nowhere.example", deadline());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->federation_ok());
  EXPECT_FALSE(r->discovery().error().empty());
  EXPECT_NE(r->discovery().well_known().error().find("refused"), std::string::npos);
  EXPECT_EQ(r->addresses_size(), 0);
  ASSERT_GT(r->findings_size(), 0);
  EXPECT_EQ(r->findings(0).code(), "discovery_failed");
  // Both SRV names were asked for, then the address of the name itself.
  std::vector<std::string> lookups = resolver_.lookups();
  EXPECT_NE(std::find(lookups.begin(), lookups.end(), "SRV _matrix-fed._tcp.nowhere.example"),
            lookups.end());
  EXPECT_NE(std::find(lookups.begin(), lookups.end(), "SRV _matrix._tcp.nowhere.example"),
            lookups.end());
}

TEST_F(DiagnoserTest, ReportsAreRateLimited) {
  Diagnoser::Options o;
  o.reports_per_second = 0.5;
  o.burst = 2;
  Diagnoser limited(Deps(), o);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(limited.DiagnoseAndWait("nowhere.example", deadline()).ok());
  }
  absl::StatusOr<v1::DiagnoseServerResponse> refused =
      limited.DiagnoseAndWait("nowhere.example", deadline());
  EXPECT_TRUE(absl::IsResourceExhausted(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("at most 0.5 a second"), std::string::npos)
      << refused.status();
  const size_t lookups = resolver_.lookups().size();
  EXPECT_TRUE(absl::IsResourceExhausted(limited.DiagnoseAndWait("other.example", deadline()).status()));
  EXPECT_EQ(resolver_.lookups().size(), lookups);  // nothing was probed
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(limited.DiagnoseAndWait("nowhere.example", deadline()).ok());
}

TEST_F(DiagnoserTest, AMalformedServerNameIsInvalidArgument) {
  absl::StatusOr<v1::DiagnoseServerResponse> r =
      diagnoser_->DiagnoseAndWait("not a name", deadline());
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
}

}  // namespace
}  // namespace keyverifier::diagnose
