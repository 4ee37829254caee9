#include "client/cli/diagnose_report.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace keyverifier::cli {
namespace {

std::string Time(int64_t ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

std::string KeysText(const google::protobuf::RepeatedPtrField<v1::DiagnoseKey>& keys) {
  std::vector<std::string> out;
  for (const v1::DiagnoseKey& k : keys) {
    out.push_back(k.expired_ts() != 0
                      ? absl::StrCat(k.key_id(), " ", k.public_key(), " (expired ",
                                     Time(k.expired_ts()), ")")
                      : absl::StrCat(k.key_id(), " ", k.public_key()));
  }
  return out.empty() ? "none" : absl::StrJoin(out, ", ");
}

const char* SeverityName(v1::DiagnoseFinding::Severity s) {
  switch (s) {
    case v1::DiagnoseFinding::ERROR: return "ERROR";
    case v1::DiagnoseFinding::WARNING: return "WARNING";
    case v1::DiagnoseFinding::INFO: return "INFO";
    default: return "?";
  }
}

}  // namespace

std::string DiagnoseText(const v1::DiagnoseServerResponse& r) {
  std::string out = absl::StrCat("Federation report for ", r.server_name(), " (",
                                 Time(r.checked_at_ts()), "): ",
                                 r.federation_ok() ? "federation works" : "FEDERATION BROKEN",
                                 "\n\nDiscovery\n");
  const v1::DiagnoseDiscovery& d = r.discovery();
  const v1::DiagnoseWellKnown& wk = d.well_known();
  if (!wk.attempted()) {
    absl::StrAppend(&out, "  .well-known: not looked up (IP literal or explicit port)\n");
  } else if (!wk.error().empty()) {
    absl::StrAppend(&out, "  .well-known: none (", wk.error(), ")\n");
  } else {
    absl::StrAppend(&out, "  .well-known: HTTP ", wk.http_status());
    if (!wk.delegated_server().empty()) {
      absl::StrAppend(&out, ", delegates to ", wk.delegated_server(), ", cached ",
                      wk.cache_seconds(), " s",
                      wk.cache_control().empty() ? "" : absl::StrCat(" (Cache-Control: ",
                                                                     wk.cache_control(), ")"));
    } else if (!wk.invalid_reason().empty()) {
      absl::StrAppend(&out, ", invalid: ", wk.invalid_reason());
    }
    absl::StrAppend(&out, "\n");
    if (!wk.body().empty()) absl::StrAppend(&out, "    body: ", wk.body(), "\n");
  }
  for (const v1::DiagnoseSrv& s : d.srv()) {
    absl::StrAppend(&out, "  SRV ", s.name(), ": ",
                    s.found() ? absl::StrCat(s.targets_size(), " record(s)")
                              : (s.error().empty() ? "none" : s.error()),
                    "\n");
    for (const v1::DiagnoseSrvTarget& t : s.targets()) {
      absl::StrAppend(&out, "    ", t.target(), ":", t.port(), " (priority ", t.priority(),
                      ", weight ", t.weight(), ") -> ",
                      t.error().empty() ? absl::StrJoin(t.addresses(), ", ") : t.error(),
                      t.cname_chain().empty()
                          ? ""
                          : absl::StrCat("  [CNAME: ", absl::StrJoin(t.cname_chain(), ", "), "]"),
                      "\n");
    }
  }
  if (!d.error().empty()) {
    absl::StrAppend(&out, "  discovery failed: ", d.error(), "\n");
  } else {
    absl::StrAppend(&out, "  route: ", d.route(), "\n  Host: ", d.host_header(),
                    ", certificate name: ", d.tls_name(), "\n  addresses: ",
                    absl::StrJoin(d.endpoints(), ", "), "\n");
  }
  absl::StrAppend(&out, "\nAddresses\n");
  for (const v1::DiagnoseAddress& a : r.addresses()) {
    absl::StrAppend(&out, "  ", a.endpoint(), "\n");
    if (!a.handshake_error().empty()) {
      absl::StrAppend(&out, "    no TLS handshake: ", a.handshake_error(), "\n");
      continue;
    }
    absl::StrAppend(&out, "    TLS: ", a.tls_version(), " ", a.tls_cipher(), "\n");
    absl::StrAppend(&out, "    certificate: ", a.certificate_valid() ? "valid" : "INVALID");
    if (!a.certificate_rule().empty()) absl::StrAppend(&out, " (", a.certificate_rule(), ")");
    if (a.certificate_not_after_ts() != 0) {
      absl::StrAppend(&out, " ", a.certificate_subject(), " [",
                      absl::StrJoin(a.certificate_names(), ", "), "], expires ",
                      Time(a.certificate_not_after_ts()), " (", a.certificate_days_left(),
                      " days)");
    }
    absl::StrAppend(&out, "\n");
    for (const std::string& why : a.certificate_reasons()) {
      absl::StrAppend(&out, "      ", why, "\n");
    }
    if (!a.keys_error().empty()) {
      absl::StrAppend(&out, "    keys: ", a.keys_error(), "\n");
    } else {
      absl::StrAppend(&out, "    keys: ", KeysText(a.verify_keys()), "; old: ",
                      KeysText(a.old_verify_keys()), "\n");
    }
  }
  const v1::DiagnoseKeyResponse& k = r.keys();
  absl::StrAppend(&out, "\nKey response\n");
  if (!k.valid()) {
    absl::StrAppend(&out, "  none valid", k.error().empty() ? "" : ": " + k.error(), "\n");
  } else {
    absl::StrAppend(&out, "  from ", k.endpoint(), ", signed by ",
                    absl::StrJoin(k.signed_by(), ", "), "\n  valid_until_ts ",
                    Time(k.valid_until_ts()), "\n  verify_keys: ", KeysText(k.verify_keys()),
                    "\n  old_verify_keys: ", KeysText(k.old_verify_keys()),
                    "\n  every address serves the same keys: ",
                    k.addresses_agree() ? "yes" : "NO", "\n");
  }
  for (const v1::DiagnoseHistoryKey& h : k.history()) {
    absl::StrAppend(&out, "  seen before: ", h.key_id(), " ", h.public_key(),
                    h.old() ? " (old)" : "", ", ", Time(h.first_seen_ts()), " to ",
                    Time(h.last_seen_ts()), "\n");
  }
  if (!k.reused_key_ids().empty()) {
    absl::StrAppend(&out, "  key ids bound to a new key: ", absl::StrJoin(k.reused_key_ids(), ", "),
                    "\n");
  }
  if (!k.vanished_key_ids().empty()) {
    absl::StrAppend(&out, "  keys vanished: ", absl::StrJoin(k.vanished_key_ids(), ", "), "\n");
  }
  absl::StrAppend(&out, "\nNotaries\n");
  if (r.notaries().empty()) absl::StrAppend(&out, "  none configured\n");
  for (const v1::DiagnoseNotary& n : r.notaries()) {
    if (!n.answered()) {
      absl::StrAppend(&out, "  ", n.notary(), ": no answer: ", n.error(), "\n");
    } else {
      absl::StrAppend(&out, "  ", n.notary(), ": ", KeysText(n.verify_keys()), " — ",
                      !k.valid()               ? "no direct answer to compare with"
                      : n.agrees_with_direct() ? "agrees with the server"
                                               : "DIFFERS from the server",
                      "\n");
    }
  }
  const v1::DiagnoseVersion& v = r.version();
  absl::StrAppend(&out, "\nVersion\n  ",
                  v.answered() ? absl::StrCat(v.name(), " ", v.version())
                               : absl::StrCat("none: ", v.error()),
                  "\n\nFindings\n");
  if (r.findings().empty()) absl::StrAppend(&out, "  none\n");
  for (const v1::DiagnoseFinding& f : r.findings()) {
    absl::StrAppend(&out, "  ", SeverityName(f.severity()), " ", f.code(), ": ", f.message(),
                    "\n    fix: ", f.fix(), "\n");
  }
  return out;
}

std::string DiagnoseJson(const v1::DiagnoseServerResponse& report) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(report, &out, options);
  return out + "\n";
}

}  // namespace keyverifier::cli
