// The findings of a federation report, table-driven: a healthy report has
// none, and each way a server can be broken gives its finding (code,
// severity) and decides federation_ok.
#include "service/diagnose/findings.h"

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace keyverifier::diagnose {
namespace {

using v1::DiagnoseFinding;
using v1::DiagnoseServerResponse;

constexpr int64_t kNow = 1'700'000'000'000;
constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kDay = 24 * kHour;
const char kKeyA[] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const char kKeyB[] = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

void SetKeys(google::protobuf::RepeatedPtrField<v1::DiagnoseKey>* keys, const char* id,
             const char* key) {
  keys->Clear();
  v1::DiagnoseKey* k = keys->Add();
  k->set_key_id(id);
  k->set_public_key(key);
}

// What a healthy server looks like: SRV _matrix-fed._tcp, two addresses with
// valid certificates serving the same key, a day's validity, the store
// having seen the same key, a notary agreeing, a version.
DiagnoseServerResponse Healthy() {
  DiagnoseServerResponse r;
  r.set_server_name("example.org");
  r.set_checked_at_ts(kNow);
  v1::DiagnoseDiscovery* d = r.mutable_discovery();
  d->mutable_well_known()->set_attempted(true);
  d->mutable_well_known()->set_http_status(404);
  d->set_srv_host("example.org");
  v1::DiagnoseSrv* fed = d->add_srv();
  fed->set_name("_matrix-fed._tcp.example.org");
  fed->set_found(true);
  v1::DiagnoseSrvTarget* t = fed->add_targets();
  t->set_target("matrix.example.org");
  t->set_port(8448);
  t->add_addresses("192.0.2.1");
  t->add_addresses("192.0.2.2");
  d->add_srv()->set_name("_matrix._tcp.example.org");
  d->set_route("no well-known (HTTP 404) -> SRV _matrix-fed._tcp.example.org");
  d->set_host_header("example.org");
  d->set_tls_name("example.org");
  for (const char* e : {"192.0.2.1:8448", "192.0.2.2:8448"}) {
    d->add_endpoints(e);
    v1::DiagnoseAddress* a = r.add_addresses();
    a->set_endpoint(e);
    a->set_tls_version("TLSv1.3");
    a->set_certificate_valid(true);
    a->set_certificate_rule("chain_verified");
    a->set_certificate_not_after_ts(kNow + 60 * kDay);
    a->set_certificate_days_left(60);
    a->set_keys_http_status(200);
    SetKeys(a->mutable_verify_keys(), "ed25519:a", kKeyA);
    a->set_valid_until_ts(kNow + kDay);
  }
  v1::DiagnoseKeyResponse* k = r.mutable_keys();
  k->set_valid(true);
  k->set_endpoint("192.0.2.1:8448");
  k->add_signed_by("ed25519:a");
  k->set_valid_until_ts(kNow + kDay);
  SetKeys(k->mutable_verify_keys(), "ed25519:a", kKeyA);
  v1::DiagnoseHistoryKey* h = k->add_history();
  h->set_key_id("ed25519:a");
  h->set_public_key(kKeyA);
  h->set_first_seen_ts(kNow - 30 * kDay);
  h->set_last_seen_ts(kNow - kDay);
  v1::DiagnoseNotary* n = r.add_notaries();
  n->set_notary("notary.example");
  n->set_answered(true);
  SetKeys(n->mutable_verify_keys(), "ed25519:a", kKeyA);
  r.mutable_version()->set_answered(true);
  r.mutable_version()->set_name("Synapse");
  r.mutable_version()->set_version("1.99.0");
  return r;
}

DiagnoseServerResponse Analyzed(DiagnoseServerResponse r) {
  AnalysisOptions o;
  o.now_ms = kNow;
  Analyze(&r, o);
  return r;
}

std::vector<std::string> Codes(const DiagnoseServerResponse& r) {
  std::vector<std::string> out;
  for (const DiagnoseFinding& f : r.findings()) out.push_back(f.code());
  return out;
}

TEST(FindingsTest, AHealthyServerHasNoFindings) {
  DiagnoseServerResponse r = Analyzed(Healthy());
  EXPECT_TRUE(r.federation_ok());
  EXPECT_TRUE(Codes(r).empty()) << r.DebugString();
  EXPECT_TRUE(r.keys().addresses_agree());
  EXPECT_TRUE(r.notaries(0).agrees_with_direct());
}

struct Case {
  const char* name;
  std::function<void(DiagnoseServerResponse&)> breaks;
  const char* code;
  DiagnoseFinding::Severity severity;
  // Something the message must name.
  const char* message_names;
};

class BrokenServerTest : public ::testing::TestWithParam<Case> {};

TEST_P(BrokenServerTest, GivesItsFinding) {
  const Case& c = GetParam();
  DiagnoseServerResponse r = Healthy();
  c.breaks(r);
  r = Analyzed(std::move(r));
  const DiagnoseFinding* found = nullptr;
  for (const DiagnoseFinding& f : r.findings()) {
    if (f.code() == c.code) found = &f;
  }
  ASSERT_NE(found, nullptr) << c.code << " missing from " << r.DebugString();
  EXPECT_EQ(found->severity(), c.severity);
  EXPECT_NE(found->message().find(c.message_names), std::string::npos) << found->message();
  EXPECT_FALSE(found->fix().empty());
  EXPECT_EQ(r.federation_ok(), c.severity != DiagnoseFinding::ERROR);
  // Most severe first.
  for (int i = 1; i < r.findings_size(); ++i) {
    EXPECT_GE(r.findings(i - 1).severity(), r.findings(i).severity());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Findings, BrokenServerTest,
    ::testing::Values(
        Case{"legacy_srv_only",
             [](DiagnoseServerResponse& r) {
               auto* d = r.mutable_discovery();
               *d->mutable_srv(1) = d->srv(0);
               d->mutable_srv(1)->set_name("_matrix._tcp.example.org");
               d->mutable_srv(0)->Clear();
               d->mutable_srv(0)->set_name("_matrix-fed._tcp.example.org");
             },
             "srv_legacy_only", DiagnoseFinding::WARNING, "_matrix._tcp.example.org"},
        Case{"cname_target",
             [](DiagnoseServerResponse& r) {
               r.mutable_discovery()->mutable_srv(0)->mutable_targets(0)->add_cname_chain(
                   "matrix.example.org -> host.example.net");
             },
             "srv_target_cname", DiagnoseFinding::WARNING, "matrix.example.org"},
        Case{"invalid_well_known",
             [](DiagnoseServerResponse& r) {
               auto* wk = r.mutable_discovery()->mutable_well_known();
               wk->set_http_status(200);
               wk->set_invalid_reason("not JSON");
             },
             "well_known_invalid", DiagnoseFinding::WARNING, "not JSON"},
        Case{"no_address",
             [](DiagnoseServerResponse& r) {
               r.mutable_discovery()->clear_endpoints();
               r.mutable_discovery()->set_error("NXDOMAIN");
               r.clear_addresses();
               r.mutable_keys()->set_valid(false);
             },
             "discovery_failed", DiagnoseFinding::ERROR, "NXDOMAIN"},
        Case{"wrong_name",
             [](DiagnoseServerResponse& r) {
               auto* a = r.mutable_addresses(1);
               a->set_certificate_valid(false);
               a->add_certificate_reasons("hostname_mismatch: leaf is for other.test");
               a->set_keys_error("certificate rejected");
               a->clear_verify_keys();
             },
             "certificate_invalid", DiagnoseFinding::ERROR, "192.0.2.2:8448"},
        Case{"expiring",
             [](DiagnoseServerResponse& r) { r.mutable_addresses(0)->set_certificate_days_left(3); },
             "certificate_expires_soon", DiagnoseFinding::WARNING, "3 days"},
        Case{"unreachable",
             [](DiagnoseServerResponse& r) {
               r.mutable_addresses(1)->set_handshake_error("connection refused");
             },
             "address_unreachable", DiagnoseFinding::ERROR, "connection refused"},
        Case{"different_keys",
             [](DiagnoseServerResponse& r) {
               SetKeys(r.mutable_addresses(1)->mutable_verify_keys(), "ed25519:b", kKeyB);
             },
             "addresses_disagree", DiagnoseFinding::ERROR, "ed25519:b"},
        Case{"no_keys",
             [](DiagnoseServerResponse& r) {
               r.mutable_keys()->set_valid(false);
               r.mutable_keys()->set_error("signature of ed25519:a does not verify");
             },
             "keys_unavailable", DiagnoseFinding::ERROR, "does not verify"},
        Case{"bad_self_signature",
             [](DiagnoseServerResponse& r) {
               auto* a = r.mutable_addresses(1);
               a->set_keys_error("signature of ed25519:a does not verify");
               a->clear_verify_keys();
             },
             "key_response_invalid", DiagnoseFinding::ERROR, "does not verify"},
        Case{"key_endpoint_missing",
             [](DiagnoseServerResponse& r) {
               auto* a = r.mutable_addresses(1);
               a->set_keys_http_status(404);
               a->set_keys_error("HTTP 404");
               a->clear_verify_keys();
             },
             "address_keys_unavailable", DiagnoseFinding::ERROR, "HTTP 404"},
        Case{"short_validity",
             [](DiagnoseServerResponse& r) { r.mutable_keys()->set_valid_until_ts(kNow + 60000); },
             "valid_until_short", DiagnoseFinding::WARNING, "60 s"},
        Case{"beyond_7_days",
             [](DiagnoseServerResponse& r) {
               r.mutable_keys()->set_valid_until_ts(kNow + 30 * kDay);
             },
             "valid_until_beyond_7_days", DiagnoseFinding::WARNING, "30 days"},
        Case{"expired_validity",
             [](DiagnoseServerResponse& r) { r.mutable_keys()->set_valid_until_ts(kNow - kHour); },
             "valid_until_expired", DiagnoseFinding::ERROR, "has passed"},
        Case{"key_id_reused",
             [](DiagnoseServerResponse& r) {
               r.mutable_keys()->mutable_history(0)->set_public_key(kKeyB);
             },
             "key_id_reused", DiagnoseFinding::ERROR, "ed25519:a"},
        Case{"keys_vanished",
             [](DiagnoseServerResponse& r) {
               v1::DiagnoseHistoryKey* h = r.mutable_keys()->add_history();
               h->set_key_id("ed25519:gone");
               h->set_public_key(kKeyB);
             },
             "keys_vanished", DiagnoseFinding::WARNING, "ed25519:gone"},
        Case{"notary_disagrees",
             [](DiagnoseServerResponse& r) {
               SetKeys(r.mutable_notaries(0)->mutable_verify_keys(), "ed25519:a", kKeyB);
             },
             "notary_disagrees", DiagnoseFinding::ERROR, "notary.example"},
        Case{"notary_failed",
             [](DiagnoseServerResponse& r) {
               r.mutable_notaries(0)->set_answered(false);
               r.mutable_notaries(0)->set_error("timed out");
             },
             "notary_failed", DiagnoseFinding::WARNING, "timed out"},
        Case{"version_missing",
             [](DiagnoseServerResponse& r) {
               r.mutable_version()->Clear();
               r.mutable_version()->set_http_status(404);
               r.mutable_version()->set_error("HTTP 404");
             },
             "version_missing", DiagnoseFinding::WARNING, "HTTP 404"}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(FindingsTest, OldKeysListedAreNotVanishedAndAnOldKeyMayStayOld) {
  DiagnoseServerResponse r = Healthy();
  // Rotated properly: the new key is current, the old one listed as old.
  SetKeys(r.mutable_keys()->mutable_verify_keys(), "ed25519:b", kKeyB);
  SetKeys(r.mutable_keys()->mutable_old_verify_keys(), "ed25519:a", kKeyA);
  r.mutable_keys()->mutable_old_verify_keys(0)->set_expired_ts(kNow - kHour);
  for (auto& a : *r.mutable_addresses()) SetKeys(a.mutable_verify_keys(), "ed25519:b", kKeyB);
  SetKeys(r.mutable_notaries(0)->mutable_verify_keys(), "ed25519:b", kKeyB);
  r = Analyzed(std::move(r));
  EXPECT_TRUE(r.federation_ok());
  EXPECT_TRUE(Codes(r).empty()) << r.DebugString();
  EXPECT_TRUE(r.keys().vanished_key_ids().empty());
  EXPECT_TRUE(r.keys().reused_key_ids().empty());
}

TEST(FindingsTest, DerivedFieldsNameWhatDiffers) {
  DiagnoseServerResponse r = Healthy();
  r.mutable_keys()->mutable_history(0)->set_public_key(kKeyB);
  v1::DiagnoseHistoryKey* gone = r.mutable_keys()->add_history();
  gone->set_key_id("ed25519:gone");
  gone->set_public_key(kKeyB);
  SetKeys(r.mutable_notaries(0)->mutable_verify_keys(), "ed25519:x", kKeyB);
  r = Analyzed(std::move(r));
  EXPECT_FALSE(r.federation_ok());
  ASSERT_EQ(r.keys().reused_key_ids_size(), 1);
  EXPECT_EQ(r.keys().reused_key_ids(0), "ed25519:a");
  ASSERT_EQ(r.keys().vanished_key_ids_size(), 1);
  EXPECT_EQ(r.keys().vanished_key_ids(0), "ed25519:gone");
  EXPECT_FALSE(r.notaries(0).agrees_with_direct());
  EXPECT_NE(r.notaries(0).difference().find("ed25519:x"), std::string::npos);
  // Analysing again gives the same (derived fields are replaced, not added).
  DiagnoseServerResponse again = Analyzed(r);
  EXPECT_EQ(again.findings_size(), r.findings_size());
  EXPECT_EQ(again.keys().reused_key_ids_size(), 1);
}

TEST(FindingsTest, AVersionRequestRefusedLikeEverythingElseIsNotReportedTwice) {
  DiagnoseServerResponse r = Healthy();
  r.mutable_addresses()->DeleteSubrange(1, 1);
  v1::DiagnoseAddress* a = r.mutable_addresses(0);
  a->set_certificate_valid(false);
  a->add_certificate_reasons("expired: leaf expired");
  a->set_keys_error("certificate rejected");
  a->clear_verify_keys();
  r.mutable_keys()->set_valid(false);
  r.mutable_version()->Clear();
  r.mutable_version()->set_error("certificate rejected");
  r = Analyzed(std::move(r));
  EXPECT_FALSE(r.federation_ok());
  std::vector<std::string> codes = Codes(r);
  EXPECT_EQ(codes, (std::vector<std::string>{"certificate_invalid", "keys_unavailable"}));
  EXPECT_NE(r.findings(0).fix().find("renew"), std::string::npos);
  // A notary's answer cannot be compared with nothing.
  EXPECT_FALSE(r.notaries(0).agrees_with_direct());
  EXPECT_TRUE(r.notaries(0).difference().empty());
}

TEST(FindingsTest, KeySetTextIsSortedAndSaysWhenEmpty) {
  google::protobuf::RepeatedPtrField<v1::DiagnoseKey> keys;
  EXPECT_EQ(KeySetText(keys), "(no keys)");
  SetKeys(&keys, "ed25519:b", kKeyB);
  v1::DiagnoseKey* a = keys.Add();
  a->set_key_id("ed25519:a");
  a->set_public_key(kKeyA);
  EXPECT_EQ(KeySetText(keys), std::string("ed25519:a=") + kKeyA + ",ed25519:b=" + kKeyB);
}

}  // namespace
}  // namespace keyverifier::diagnose
