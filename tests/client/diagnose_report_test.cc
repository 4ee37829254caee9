// How keyverifier_cli diagnose shows a report: the text names every section
// and each finding with its fix; --json is the message's JSON form.
#include "client/cli/diagnose_report.h"

#include "gtest/gtest.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"

namespace keyverifier::cli {
namespace {

v1::DiagnoseServerResponse Report() {
  v1::DiagnoseServerResponse r;
  r.set_server_name("example.org");
  r.set_checked_at_ts(1700000000000);
  v1::DiagnoseDiscovery* d = r.mutable_discovery();
  d->mutable_well_known()->set_attempted(true);
  d->mutable_well_known()->set_http_status(200);
  d->mutable_well_known()->set_delegated_server("m.example.org");
  d->mutable_well_known()->set_cache_seconds(86400);
  d->mutable_well_known()->set_body(R"({"m.server":"m.example.org"})");
  v1::DiagnoseSrv* srv = d->add_srv();
  srv->set_name("_matrix-fed._tcp.m.example.org");
  srv->set_found(true);
  v1::DiagnoseSrvTarget* t = srv->add_targets();
  t->set_target("alias.example.org");
  t->set_port(8448);
  t->add_addresses("192.0.2.1");
  t->add_cname_chain("alias.example.org -> host.example.net");
  d->add_srv()->set_name("_matrix._tcp.m.example.org");
  d->set_route("well-known -> m.example.org -> SRV _matrix-fed._tcp.m.example.org");
  d->add_endpoints("192.0.2.1:8448");
  v1::DiagnoseAddress* a = r.add_addresses();
  a->set_endpoint("192.0.2.1:8448");
  a->set_tls_version("TLSv1.3");
  a->set_tls_cipher("TLS_AES_256_GCM_SHA384");
  a->add_certificate_reasons("expired: leaf expired");
  a->set_keys_error("certificate rejected");
  r.add_notaries()->set_notary("notary.example");
  r.mutable_notaries(0)->set_error("timed out");
  r.mutable_version()->set_error("certificate rejected");
  v1::DiagnoseFinding* f = r.add_findings();
  f->set_severity(v1::DiagnoseFinding::ERROR);
  f->set_code("certificate_invalid");
  f->set_message("192.0.2.1:8448: the certificate is refused");
  f->set_fix("renew the certificate");
  return r;
}

TEST(DiagnoseReportTest, TextShowsEverySectionAndTheFixes) {
  const std::string text = DiagnoseText(Report());
  for (const char* part :
       {"Federation report for example.org", "FEDERATION BROKEN", "delegates to m.example.org",
        "cached 86400 s", "SRV _matrix-fed._tcp.m.example.org: 1 record(s)",
        "SRV _matrix._tcp.m.example.org: none",
        "[CNAME: alias.example.org -> host.example.net]", "TLS: TLSv1.3 TLS_AES_256_GCM_SHA384",
        "certificate: INVALID", "expired: leaf expired", "notary.example: no answer: timed out",
        "ERROR certificate_invalid: 192.0.2.1:8448", "fix: renew the certificate"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
  }
  v1::DiagnoseServerResponse ok = Report();
  ok.set_federation_ok(true);
  ok.clear_findings();
  const std::string healthy = DiagnoseText(ok);
  EXPECT_NE(healthy.find("federation works"), std::string::npos);
  EXPECT_NE(healthy.find("Findings\n  none"), std::string::npos) << healthy;
}

TEST(DiagnoseReportTest, JsonIsOneLineWithProtoFieldNames) {
  const std::string json = DiagnoseJson(Report());
  ASSERT_EQ(json.find('\n'), json.size() - 1);
  absl::StatusOr<core::Value> v = core::ParseJson(json);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->Find("server_name")->string_value(), "example.org");
  const core::Value* ok = v->Find("federation_ok");
  ASSERT_NE(ok, nullptr);  // printed although false
  const core::Value* findings = v->Find("findings");
  ASSERT_NE(findings, nullptr);
  EXPECT_EQ(findings->array()[0].Find("severity")->string_value(), "ERROR");
  EXPECT_EQ(findings->array()[0].Find("code")->string_value(), "certificate_invalid");
}

}  // namespace
}  // namespace keyverifier::cli
