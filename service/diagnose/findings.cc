#include "service/diagnose/findings.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "service/core/verify_key.h"

namespace keyverifier::diagnose {
namespace {

using Finding = v1::DiagnoseFinding;
using Keys = google::protobuf::RepeatedPtrField<v1::DiagnoseKey>;

constexpr int64_t kDayMs = int64_t{24} * 3600 * 1000;

class Findings {
 public:
  explicit Findings(v1::DiagnoseServerResponse* report) : report_(report) {}
  void Add(Finding::Severity severity, absl::string_view code, std::string message,
           std::string fix) {
    Finding f;
    f.set_severity(severity);
    f.set_code(std::string(code));
    f.set_message(std::move(message));
    f.set_fix(std::move(fix));
    out_.push_back(std::move(f));
  }
  void Error(absl::string_view code, std::string message, std::string fix) {
    Add(Finding::ERROR, code, std::move(message), std::move(fix));
  }
  void Warning(absl::string_view code, std::string message, std::string fix) {
    Add(Finding::WARNING, code, std::move(message), std::move(fix));
  }
  void Info(absl::string_view code, std::string message, std::string fix) {
    Add(Finding::INFO, code, std::move(message), std::move(fix));
  }
  // Most severe first; the order of discovery within a severity.
  void Commit() {
    std::stable_sort(out_.begin(), out_.end(), [](const Finding& a, const Finding& b) {
      return a.severity() > b.severity();
    });
    report_->clear_findings();
    bool ok = true;
    for (Finding& f : out_) {
      ok &= f.severity() != Finding::ERROR;
      *report_->add_findings() = std::move(f);
    }
    report_->set_federation_ok(ok);
  }

 private:
  v1::DiagnoseServerResponse* report_;
  std::vector<Finding> out_;
};

std::map<std::string, std::string> ById(const Keys& keys) {
  std::map<std::string, std::string> out;
  for (const v1::DiagnoseKey& k : keys) out[k.key_id()] = k.public_key();
  return out;
}

std::string Days(int64_t ms) {
  return absl::StrCat(ms / kDayMs, " days ", (ms % kDayMs) / (3600 * 1000), " h");
}

// The SRV host's name for messages: "_matrix-fed._tcp" of
// "_matrix-fed._tcp.example.org".
std::string ServiceOf(const std::string& srv_name) {
  size_t second_dot = srv_name.find('.', srv_name.find('.') + 1);
  return srv_name.substr(0, second_dot);
}

void DiscoveryFindings(const v1::DiagnoseServerResponse& r, Findings& f) {
  const v1::DiagnoseDiscovery& d = r.discovery();
  const v1::DiagnoseWellKnown& wk = d.well_known();
  if (wk.attempted()) {
    if (wk.http_status() == 200 && !wk.invalid_reason().empty()) {
      f.Warning("well_known_invalid",
                absl::StrCat("/.well-known/matrix/server answers 200 but is not a valid "
                             "delegation: ", wk.invalid_reason(),
                             "; peers ignore it and fall back to SRV and port 8448"),
                "serve {\"m.server\": \"<host>[:<port>]\"} as JSON, or remove the file");
    } else if (wk.http_status() != 200 && wk.http_status() != 404 && wk.http_status() != 0) {
      f.Info("well_known_status",
             absl::StrCat("/.well-known/matrix/server answers HTTP ", wk.http_status(),
                          "; peers treat it as no delegation"),
             "serve the delegation with status 200, or 404 when there is none");
    }
  }
  std::vector<const v1::DiagnoseSrv*> found;
  for (const v1::DiagnoseSrv& s : d.srv()) {
    if (s.found()) found.push_back(&s);
    for (const v1::DiagnoseSrvTarget& t : s.targets()) {
      if (t.cname_chain_size() > 0) {
        f.Warning("srv_target_cname",
                  absl::StrCat("the SRV record ", s.name(), " names ", t.target(),
                               ", an alias (", absl::StrJoin(t.cname_chain(), ", "),
                               "); SRV targets must not be CNAMEs (RFC 2782), and some "
                               "peers will not follow it"),
                  absl::StrCat("point the SRV record at the canonical host name",
                               t.cname_chain().empty() ? "" : " the alias resolves to",
                               ", which has A/AAAA records of its own"));
      }
    }
  }
  const bool fed = std::any_of(found.begin(), found.end(), [](const v1::DiagnoseSrv* s) {
    return ServiceOf(s->name()) == "_matrix-fed._tcp";
  });
  const bool legacy = std::any_of(found.begin(), found.end(), [](const v1::DiagnoseSrv* s) {
    return ServiceOf(s->name()) == "_matrix._tcp";
  });
  if (legacy && !fed && wk.delegated_server().empty()) {
    f.Warning("srv_legacy_only",
              absl::StrCat("only the deprecated SRV name _matrix._tcp.", d.srv_host(),
                           " is published; the spec may drop it, and the Federation Tester "
                           "is the only check that sees it"),
              absl::StrCat("publish the same records as _matrix-fed._tcp.", d.srv_host(),
                           ", or delegate with /.well-known/matrix/server"));
  }
  if (d.endpoints().empty()) {
    f.Error("discovery_failed",
            absl::StrCat("no address for ", r.server_name(),
                         d.error().empty() ? "" : absl::StrCat(": ", d.error())),
            "publish /.well-known/matrix/server, an SRV record _matrix-fed._tcp, or A/AAAA "
            "records for the server name (port 8448)");
  }
}

std::string CertificateFix(const v1::DiagnoseAddress& a, const std::string& tls_name) {
  std::vector<std::string> fixes;
  auto has = [&](absl::string_view reason) {
    return std::any_of(a.certificate_reasons().begin(), a.certificate_reasons().end(),
                       [&](const std::string& r) { return absl::StartsWith(r, reason); });
  };
  if (has("hostname_mismatch")) {
    fixes.push_back(absl::StrCat("serve a certificate whose subject alternative names include ",
                                 tls_name, " (not the SRV target's name)"));
  }
  if (has("expired") || has("not_yet_valid")) fixes.push_back("renew the certificate");
  if (has("untrusted_root")) {
    fixes.push_back("use a certificate from a publicly trusted CA (self-signed certificates "
                    "are refused since MSC1711)");
  }
  if (has("missing_intermediate")) fixes.push_back("serve the full chain with intermediates");
  if (fixes.empty()) fixes.push_back("serve a certificate that passes WebPKI validation");
  return absl::StrJoin(fixes, "; ");
}

void AddressFindings(const v1::DiagnoseServerResponse& r, const AnalysisOptions& o,
                     Findings& f) {
  const std::string& tls_name = r.discovery().tls_name();
  int reachable = 0;
  for (const v1::DiagnoseAddress& a : r.addresses()) {
    if (!a.handshake_error().empty()) {
      f.Error("address_unreachable",
              absl::StrCat(a.endpoint(), ": no TLS handshake: ", a.handshake_error()),
              "make the address accept HTTPS federation traffic, or stop publishing it");
      continue;
    }
    ++reachable;
    if (!a.certificate_valid()) {
      f.Error("certificate_invalid",
              absl::StrCat(a.endpoint(), ": the certificate is refused for ", tls_name, ": ",
                           absl::StrJoin(a.certificate_reasons(), "; ")),
              CertificateFix(a, tls_name));
    } else if (a.certificate_not_after_ts() != 0 &&
               a.certificate_days_left() < o.certificate_warning_days) {
      f.Warning("certificate_expires_soon",
                absl::StrCat(a.endpoint(), ": the certificate expires in ",
                             a.certificate_days_left(), " days"),
                "renew the certificate (and check that automatic renewal runs)");
    }
    if (a.certificate_valid() && !a.keys_error().empty() && a.keys_http_status() == 200) {
      f.Error("key_response_invalid",
              absl::StrCat(a.endpoint(), ": the key response is refused: ", a.keys_error()),
              absl::StrCat("serve a response for server_name ", r.server_name(),
                           " signed by every key in verify_keys (check the signing key "
                           "file matches the published key)"));
    } else if (a.certificate_valid() && !a.keys_error().empty()) {
      f.Error("address_keys_unavailable",
              absl::StrCat(a.endpoint(), ": GET /_matrix/key/v2/server: ", a.keys_error()),
              "make every address serve /_matrix/key/v2/server (check the reverse proxy "
              "forwards /_matrix/key/*)");
    }
  }
  (void)reachable;
}

void KeyFindings(v1::DiagnoseServerResponse& r, const AnalysisOptions& o, Findings& f) {
  v1::DiagnoseKeyResponse& k = *r.mutable_keys();
  k.clear_reused_key_ids();
  k.clear_vanished_key_ids();
  // Do the addresses agree? Those that served a response are compared.
  std::map<std::string, std::vector<std::string>> by_keys;  // key set -> endpoints
  for (const v1::DiagnoseAddress& a : r.addresses()) {
    if (a.keys_error().empty() && a.verify_keys_size() > 0) {
      by_keys[KeySetText(a.verify_keys())].push_back(a.endpoint());
    }
  }
  k.set_addresses_agree(by_keys.size() <= 1);
  if (by_keys.size() > 1) {
    std::vector<std::string> parts;
    for (const auto& [keys, endpoints] : by_keys) {
      parts.push_back(absl::StrCat(absl::StrJoin(endpoints, ", "), " serve ", keys));
    }
    f.Error("addresses_disagree",
            absl::StrCat("the addresses serve different keys: ", absl::StrJoin(parts, "; "),
                         "; peers get one or the other and fail to verify the rest"),
            "run one signing key on every instance behind the server name (copy the "
            "signing key file), or stop publishing the stale addresses");
  }
  if (!k.valid()) {
    if (!r.discovery().endpoints().empty()) {
      f.Error("keys_unavailable",
              absl::StrCat("no address served a valid key response",
                           k.error().empty() ? "" : absl::StrCat(": ", k.error())),
              "serve GET /_matrix/key/v2/server with a response signed by every key in "
              "verify_keys");
    }
  } else {
    const int64_t left = k.valid_until_ts() - o.now_ms;
    if (left <= 0) {
      f.Error("valid_until_expired",
              absl::StrCat("valid_until_ts ", k.valid_until_ts(), " has passed (",
                           Days(-left), " ago): peers will not accept the keys for new events"),
              "let the server publish its key response again with a valid_until_ts ahead "
              "(check its clock)");
    } else if (left < o.short_validity_ms) {
      f.Warning("valid_until_short",
                absl::StrCat("valid_until_ts is only ", left / 1000,
                             " s ahead: every peer refetches the keys that often, and "
                             "events checked a little later fail"),
                "publish a valid_until_ts about a day ahead");
    } else if (left > core::kMaxKeyValidityMs) {
      f.Warning("valid_until_beyond_7_days",
                absl::StrCat("valid_until_ts is ", Days(left),
                             " ahead; peers trust keys for at most 7 days after fetching "
                             "them, whatever it says"),
                "publish a valid_until_ts at most 7 days ahead (a day is usual)");
    }
    // Key history.
    std::map<std::string, std::string> now_current = ById(k.verify_keys());
    std::map<std::string, std::string> now_all = now_current;
    for (const auto& [id, key] : ById(k.old_verify_keys())) now_all.emplace(id, key);
    for (const v1::DiagnoseHistoryKey& h : k.history()) {
      auto it = now_all.find(h.key_id());
      if (it != now_all.end() && it->second != h.public_key()) {
        k.add_reused_key_ids(h.key_id());
        f.Error("key_id_reused",
                absl::StrCat("key id ", h.key_id(), " now names key ", it->second,
                             ", but was seen with key ", h.public_key(),
                             " (first seen ", h.first_seen_ts(), "); peers that knew the "
                             "old key refuse the new one (MSC4499), and events it signed "
                             "no longer verify"),
                absl::StrCat("never reuse a key id: sign with the new key under a new id, "
                             "and list ", h.key_id(), " with its old key in old_verify_keys"));
      } else if (it == now_all.end() && !h.old()) {
        k.add_vanished_key_ids(h.key_id());
        f.Warning("keys_vanished",
                  absl::StrCat("key ", h.key_id(), " (last seen ", h.last_seen_ts(),
                               ") is gone from the response and not in old_verify_keys; "
                               "events it signed stop verifying for peers that did not "
                               "cache it"),
                  absl::StrCat("list ", h.key_id(),
                               " in old_verify_keys with the expired_ts it was retired at"));
      }
    }
  }
  if (!k.history_error().empty()) {
    f.Info("history_unavailable", absl::StrCat("the key store could not be read: ",
                                               k.history_error()),
           "none on the server's side");
  }
}

void NotaryFindings(v1::DiagnoseServerResponse& r, Findings& f) {
  const v1::DiagnoseKeyResponse& k = r.keys();
  const std::string direct = KeySetText(k.verify_keys());
  for (v1::DiagnoseNotary& n : *r.mutable_notaries()) {
    n.set_agrees_with_direct(false);
    n.clear_difference();
    if (!n.answered()) {
      f.Warning("notary_failed",
                absl::StrCat("notary ", n.notary(), " gave no keys for ", r.server_name(),
                             n.error().empty() ? "" : absl::StrCat(": ", n.error())),
                "peers relying on this notary cannot verify the server until it can fetch "
                "the keys; check that the notary can reach the server");
      continue;
    }
    if (!k.valid()) continue;  // nothing to compare with
    const std::string notarised = KeySetText(n.verify_keys());
    n.set_agrees_with_direct(notarised == direct);
    if (notarised != direct) {
      n.set_difference(absl::StrCat("notary: ", notarised, "; direct: ", direct));
      f.Error("notary_disagrees",
              absl::StrCat("notary ", n.notary(), " vouches for ", notarised,
                           ", the server itself serves ", direct,
                           "; peers that ask the notary verify against other keys"),
              "if the key changed recently, ask the notary's operator to refetch; "
              "otherwise find which instance or cache serves the other key and retire it");
    }
  }
}

void VersionFindings(const v1::DiagnoseServerResponse& r, Findings& f) {
  const v1::DiagnoseVersion& v = r.version();
  if (v.answered()) return;
  if (r.discovery().endpoints().empty()) return;  // reported already
  // No HTTP answer, and no address served keys either: the reason (an
  // address or certificate finding) is reported already.
  if (v.http_status() == 0 && !r.keys().valid()) return;
  f.Warning("version_missing",
            absl::StrCat("GET /_matrix/federation/v1/version gave no version",
                         v.http_status() != 0 ? absl::StrCat(" (HTTP ", v.http_status(), ")")
                                              : "",
                         v.error().empty() ? "" : absl::StrCat(": ", v.error())),
            "make the reverse proxy forward every /_matrix/federation/ path to the "
            "homeserver");
}

}  // namespace

std::string KeySetText(const Keys& keys) {
  std::vector<std::string> parts;
  for (const auto& [id, key] : ById(keys)) parts.push_back(absl::StrCat(id, "=", key));
  return parts.empty() ? "(no keys)" : absl::StrJoin(parts, ",");
}

void Analyze(v1::DiagnoseServerResponse* report, const AnalysisOptions& options) {
  Findings f(report);
  DiscoveryFindings(*report, f);
  AddressFindings(*report, options, f);
  KeyFindings(*report, options, f);
  NotaryFindings(*report, f);
  VersionFindings(*report, f);
  f.Commit();
}

}  // namespace keyverifier::diagnose
