// Runs every x509-limbo case (server authentication subset, BetterTLS
// included) through CertificatePolicy with the case's own trust store,
// validation time, peer name and EKU requirement, and compares with the
// expected result.
//
// Fails if fewer than kMinAgree cases agree, or if any case that expects
// FAILURE is accepted without an entry in x509_limbo_exceptions.txt (which
// says, case by case, why the policy deliberately accepts it). Entries that
// no longer apply fail the test too, so the list stays true.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"
#include "service/tls/certificate_policy.h"

namespace keyverifier::tls {
namespace {

constexpr int kCases = 9755;
constexpr int kMinAgree = 9710;

std::string Runfile(const std::string& path) {
  const char* dir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(dir ? dir : ".", "/keyverifier/", path);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// "<id> <reason...>" per line; '#' starts a comment line.
std::map<std::string, std::string> ReadExceptions(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#') continue;
    size_t sp = l.find_first_of(" \t");
    std::string id(l.substr(0, sp));
    std::string reason(
        sp == absl::string_view::npos ? "" : absl::StripAsciiWhitespace(l.substr(sp)));
    out[id] = reason;
  }
  return out;
}

std::string Str(const rapidjson::Value& v, const char* key) {
  auto it = v.FindMember(key);
  if (it == v.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

struct Outcome {
  bool accepted = false;
  std::string detail;  // reasons, for disagreements
};

Outcome RunCase(const rapidjson::Value& c,
                const std::shared_ptr<const PublicSuffixList>& public_suffixes) {
  Outcome o;
  std::string trusted;
  for (const auto& p : c["trusted_certs"].GetArray()) {
    trusted += std::string(p.GetString(), p.GetStringLength()) + "\n";
  }
  std::vector<X509Ptr> roots;
  if (!trusted.empty()) {
    absl::StatusOr<std::vector<X509Ptr>> r = ParseCertificates(trusted, "trusted_certs");
    if (!r.ok()) {
      o.detail = absl::StrCat("trust store unusable: ", r.status().message());
      return o;
    }
    roots = *std::move(r);
  }
  CertificatePolicyOptions options;
  options.public_suffixes = public_suffixes;
  options.trust_store = *TrustStore::FromCertificates(std::move(roots));
  // The policy always requires serverAuth on the leaf; the case's
  // extended_key_usage is either that or empty.
  absl::StatusOr<std::unique_ptr<CertificatePolicy>> policy =
      CertificatePolicy::Create(options);
  if (!policy.ok()) {
    o.detail = absl::StrCat("policy: ", policy.status().message());
    return o;
  }
  const rapidjson::Value& name = c["expected_peer_name"];
  absl::StatusOr<PeerName> peer = Str(name, "kind") == "IP"
                                      ? PeerName::ParseIp(Str(name, "value"))
                                      : PeerName::ParseDns(Str(name, "value"));
  if (!peer.ok()) {
    o.detail = absl::StrCat("peer name: ", peer.status().message());
    return o;
  }
  absl::Time at = absl::Now();
  if (c["validation_time"].IsString()) {
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, c["validation_time"].GetString(), &at,
                         &err)) {
      o.detail = absl::StrCat("validation_time: ", err);
      return o;
    }
  }
  std::string chain = Str(c, "peer_certificate") + "\n";
  for (const auto& p : c["untrusted_intermediates"].GetArray()) {
    chain += std::string(p.GetString(), p.GetStringLength()) + "\n";
  }
  Verdict v = (*policy)->CheckEncoded(chain, *peer, at);
  o.accepted = v.valid;
  std::vector<std::string> parts;
  for (const Finding& f : v.reasons) {
    parts.push_back(absl::StrCat(ReasonName(f.reason), ": ", f.message));
  }
  o.detail = absl::StrJoin(parts, " | ");
  return o;
}

TEST(X509LimboTest, AgreesWithExpectedResults) {
  std::string json =
      ReadAll(Runfile("third_party/x509-limbo/limbo-matrix-relevant.json"));
  ASSERT_FALSE(json.empty()) << "limbo data missing from runfiles";
  std::map<std::string, std::string> exceptions =
      ReadExceptions(ReadAll(Runfile("tests/tls/x509_limbo_exceptions.txt")));

  // Debian's copy of the list (package publicsuffix), read once.
  absl::StatusOr<std::shared_ptr<const PublicSuffixList>> public_suffixes =
      PublicSuffixList::FromFile(kDebianPublicSuffixList);
  ASSERT_TRUE(public_suffixes.ok()) << public_suffixes.status();

  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  ASSERT_FALSE(doc.HasParseError());
  const auto& cases = doc["testcases"].GetArray();
  ASSERT_EQ(static_cast<int>(cases.Size()), kCases);

  const char* only = std::getenv("LIMBO_CASE");
  int agree = 0;
  int wrongly_accepted = 0;
  int documented = 0;
  std::vector<std::string> undocumented;
  std::set<std::string> exceptions_used;
  std::ostringstream report;
  for (const auto& c : cases) {
    std::string id = Str(c, "id");
    if (only != nullptr && id != only) continue;
    bool expect_success = Str(c, "expected_result") == "SUCCESS";
    Outcome o = RunCase(c, *public_suffixes);
    if (o.accepted == expect_success) {
      ++agree;
      continue;
    }
    std::string description = Str(c, "description").substr(0, 200);
    std::replace(description.begin(), description.end(), '\n', ' ');
    report << (expect_success ? "REJECTED " : "ACCEPTED ") << id << " -- " << o.detail
           << "\n    " << description << "\n";
    if (!expect_success) {
      ++wrongly_accepted;
      if (exceptions.count(id)) {
        ++documented;
        exceptions_used.insert(id);
      } else {
        undocumented.push_back(id);
      }
    }
  }
  std::cout << report.str();
  std::cout << "x509-limbo: " << agree << "/" << cases.Size() << " agree, "
            << wrongly_accepted << " accepted where FAILURE expected, " << documented
            << " documented exceptions" << std::endl;
  if (only != nullptr) return;
  EXPECT_GE(agree, kMinAgree);
  EXPECT_TRUE(undocumented.empty())
      << "accepted, FAILURE expected, not in x509_limbo_exceptions.txt: "
      << absl::StrJoin(undocumented, ", ");
  for (const auto& [id, reason] : exceptions) {
    EXPECT_TRUE(exceptions_used.count(id))
        << "x509_limbo_exceptions.txt lists " << id
        << " but the policy no longer accepts it; remove the entry";
    EXPECT_FALSE(reason.empty()) << id << " has no reason in x509_limbo_exceptions.txt";
  }
}

}  // namespace
}  // namespace keyverifier::tls
