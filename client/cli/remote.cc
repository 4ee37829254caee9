#include "client/cli/remote.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/diagnose_report.h"
#include "client/keyverifier_client.h"
#include "service/core/base64.h"
#include "service/core/canonical_json.h"
#include "service/core/json_value.h"

namespace keyverifier::cli {
namespace {

using core::Value;

const std::vector<std::string>& CommonFlags() {
  static const auto* flags = new std::vector<std::string>{
      "target", "ca", "cert", "key", "server-name", "timeout-ms", "json"};
  return *flags;
}

CommandResult Unusable(absl::string_view why) {
  CommandResult r;
  r.exit_code = kExitUnusable;
  r.err = absl::StrCat(why, "\n");
  return r;
}

std::string OutcomeName(v1::EventVerdict::Outcome o) {
  switch (o) {
    case v1::EventVerdict::VALID: return "valid";
    case v1::EventVerdict::VALID_BUT_REDACTED: return "valid_but_redacted";
    case v1::EventVerdict::INVALID: return "invalid";
    default: return "unknown";
  }
}

std::string ReasonName(v1::Reason r) {
  std::string name = v1::Reason_Name(r);
  std::transform(name.begin(), name.end(), name.begin(), ::tolower);
  return name;
}

Value VerdictJson(const v1::EventVerdict& v) {
  Value line = Value::Object();
  line.Set("verdict", Value::String(OutcomeName(v.outcome())));
  line.Set("reason", Value::String(ReasonName(v.reason())));
  if (!v.message().empty()) line.Set("message", Value::String(v.message()));
  line.Set("event_id", Value::String(v.event_id()));
  Value checked = Value::Array();
  for (const auto& c : v.checked()) {
    Value s = Value::Object();
    s.Set("server", Value::String(c.server_name()));
    Value ids = Value::Array();
    for (const auto& id : c.key_ids()) ids.mutable_array().push_back(Value::String(id));
    s.Set("key_ids", std::move(ids));
    checked.mutable_array().push_back(std::move(s));
  }
  line.Set("checked", std::move(checked));
  if (!v.redacted_event().empty()) {
    line.Set("redacted_event", Value::String(v.redacted_event()));
  }
  return line;
}

std::string VerdictText(const std::string& label, const v1::EventVerdict& v) {
  std::string out = absl::StrCat(label, OutcomeName(v.outcome()), " (",
                                 ReasonName(v.reason()), ") ", v.event_id());
  for (const auto& c : v.checked()) {
    absl::StrAppend(&out, "\n  signed by ", c.server_name(), " with ",
                    absl::StrJoin(c.key_ids(), ", "));
  }
  if (!v.message().empty()) absl::StrAppend(&out, "\n  ", v.message());
  return out + "\n";
}

struct Session {
  std::unique_ptr<client::KeyVerifierClient> client;
  bool json = false;
};

absl::StatusOr<Session> Connect(const Args& args,
                                absl::Duration timeout = absl::Seconds(10)) {
  client::ClientOptions options;
  options.timeout = timeout;
  auto flag = [&](const char* name) -> const std::string* {
    auto it = args.flags.find(name);
    return it == args.flags.end() ? nullptr : &it->second;
  };
  if (auto* v = flag("target")) options.target = *v;
  if (auto* v = flag("ca")) options.ca_file = *v;
  if (auto* v = flag("cert")) options.cert_file = *v;
  if (auto* v = flag("key")) options.key_file = *v;
  if (auto* v = flag("server-name")) options.server_name_override = *v;
  if (auto* v = flag("timeout-ms")) {
    int64_t ms;
    if (!absl::SimpleAtoi(*v, &ms) || ms <= 0) {
      return absl::InvalidArgumentError("--timeout-ms must be a positive integer");
    }
    options.timeout = absl::Milliseconds(ms);
  }
  Session s;
  if (auto* v = flag("json")) s.json = *v == "true" || *v == "1";
  absl::StatusOr<std::unique_ptr<client::KeyVerifierClient>> c =
      client::KeyVerifierClient::Create(options);
  if (!c.ok()) return c.status();
  s.client = *std::move(c);
  return s;
}

// Lets `--json` stand alone (it is the only flag without a value).
std::vector<std::string> NormaliseBoolFlags(std::vector<std::string> argv) {
  for (std::string& a : argv) {
    if (a == "--json") a = "--json=true";
  }
  return argv;
}

CommandResult RpcFailed(const absl::Status& s) {
  return Unusable(absl::StrCat("keyverifier: ", absl::StatusCodeToString(s.code()),
                               ": ", s.message()));
}

CommandResult Keys(Session& s, const Args& args) {
  if (args.positional.size() != 1) return Unusable("keys: give one SERVER");
  v1::VerifyServerKeysRequest req;
  req.set_server_name(args.positional[0]);
  auto min = args.flags.find("min-valid-until");
  if (min != args.flags.end()) {
    int64_t ms;
    if (!absl::SimpleAtoi(min->second, &ms)) return Unusable("--min-valid-until: not ms");
    req.set_minimum_valid_until_ts(ms);
  }
  absl::StatusOr<v1::VerifyServerKeysResponse> r = s.client->VerifyServerKeys(req);
  if (!r.ok()) return RpcFailed(r.status());
  CommandResult out;
  out.exit_code = kExitValid;
  if (s.json) {
    Value line = Value::Object();
    line.Set("server_name", Value::String(r->server_name()));
    for (auto [field, keys] : {std::pair{"verify_keys", &r->verify_keys()},
                               std::pair{"old_verify_keys", &r->old_verify_keys()}}) {
      Value arr = Value::Array();
      for (const auto& k : *keys) {
        Value kj = Value::Object();
        kj.Set("key_id", Value::String(k.key_id()));
        kj.Set("key", Value::String(core::EncodeBase64Unpadded(k.public_key())));
        if (k.valid_until_ts()) kj.Set("valid_until_ts", Value::Integer(k.valid_until_ts()));
        if (k.expired_ts()) kj.Set("expired_ts", Value::Integer(k.expired_ts()));
        arr.mutable_array().push_back(std::move(kj));
      }
      line.Set(field, std::move(arr));
    }
    line.Set("source", Value::String(v1::KeySource::Kind_Name(r->source().kind())));
    out.out = core::ToJson(line) + "\n";
    return out;
  }
  out.out = absl::StrCat("keys of ", r->server_name(), " (from ",
                         v1::KeySource::Kind_Name(r->source().kind()),
                         r->source().notary().empty() ? "" : " " + r->source().notary(),
                         ")\n");
  for (const auto& k : r->verify_keys()) {
    absl::StrAppend(&out.out, "  ", k.key_id(), " ",
                    core::EncodeBase64Unpadded(k.public_key()), " valid until ",
                    k.valid_until_ts(), "\n");
  }
  for (const auto& k : r->old_verify_keys()) {
    absl::StrAppend(&out.out, "  ", k.key_id(), " ",
                    core::EncodeBase64Unpadded(k.public_key()), " expired at ",
                    k.expired_ts(), "\n");
  }
  return out;
}

CommandResult VerifyEvents(Session& s, const Args& args, const Environment& env,
                           bool single) {
  auto room = args.flags.find("room-version");
  if (room == args.flags.end()) return Unusable("--room-version is required");
  std::vector<std::string> files = args.positional;
  if (files.empty()) files.push_back("-");
  if (single && files.size() != 1) return Unusable("verify-event: one FILE");
  v1::VerifyEventsRequest req;
  for (const std::string& f : files) {
    absl::StatusOr<std::string> text = env.read_file(f);
    if (!text.ok()) return Unusable(text.status().message());
    v1::VerifyEventSignatureRequest* e = req.add_events();
    e->set_event_json(*text);
    e->set_room_version(room->second);
  }
  CommandResult out;
  out.exit_code = kExitValid;
  if (single) {
    absl::StatusOr<v1::EventVerdict> v = s.client->VerifyEventSignature(req.events(0));
    if (!v.ok()) return RpcFailed(v.status());
    if (v->outcome() != v1::EventVerdict::VALID) out.exit_code = kExitInvalid;
    out.out = s.json ? core::ToJson(VerdictJson(*v)) + "\n" : VerdictText("", *v);
    return out;
  }
  absl::StatusOr<v1::VerifyEventsResponse> r = s.client->VerifyEvents(req);
  if (!r.ok()) return RpcFailed(r.status());
  if (static_cast<size_t>(r->results_size()) != files.size()) {
    return Unusable(absl::StrCat("keyverifier: ", r->results_size(), " results for ",
                                 files.size(), " events"));
  }
  for (int i = 0; i < r->results_size(); ++i) {
    const v1::EventResult& result = r->results(i);
    if (result.has_error()) {
      out.exit_code = kExitUnusable;
      if (s.json) {
        Value line = Value::Object();
        line.Set("file", Value::String(files[i]));
        line.Set("error", Value::String(result.error().message()));
        out.out += core::ToJson(line) + "\n";
      } else {
        absl::StrAppend(&out.out, files[i], ": error: ", result.error().message(), "\n");
      }
      continue;
    }
    const v1::EventVerdict& v = result.verdict();
    if (v.outcome() != v1::EventVerdict::VALID && out.exit_code == kExitValid) {
      out.exit_code = kExitInvalid;
    }
    if (s.json) {
      Value line = VerdictJson(v);
      line.Set("file", Value::String(files[i]));
      out.out += core::ToJson(line) + "\n";
    } else {
      out.out += VerdictText(files[i] + ": ", v);
    }
  }
  return out;
}

CommandResult CheckCert(Session& s, const Args& args, const Environment& env) {
  if (args.positional.size() != 1) return Unusable("check-cert: give one SERVER");
  v1::CheckCertificateRequest req;
  req.set_server_name(args.positional[0]);
  auto chain = args.flags.find("chain");
  if (chain != args.flags.end()) {
    absl::StatusOr<std::string> pem = env.read_file(chain->second);
    if (!pem.ok()) return Unusable(pem.status().message());
    req.set_pem_chain(*pem);
  } else {
    req.set_connect(true);
  }
  auto port = args.flags.find("port");
  if (port != args.flags.end()) {
    uint32_t p;
    if (!absl::SimpleAtoi(port->second, &p) || p > 65535) return Unusable("--port: bad port");
    req.set_port(p);
  }
  absl::StatusOr<v1::CheckCertificateResponse> r = s.client->CheckCertificate(req);
  if (!r.ok()) return RpcFailed(r.status());
  CommandResult out;
  out.exit_code = r->valid() ? kExitValid : kExitInvalid;
  Value line = Value::Object();
  line.Set("verdict", Value::String(r->valid() ? "valid" : "invalid"));
  Value reasons = Value::Array();
  for (const auto& why : r->reasons()) reasons.mutable_array().push_back(Value::String(why));
  line.Set("reasons", std::move(reasons));
  line.Set("checked_name", Value::String(r->checked_name()));
  out.out = s.json ? core::ToJson(line) + "\n"
                   : absl::StrCat(r->valid() ? "valid" : "invalid", " for ",
                                  r->checked_name(), r->reasons().empty() ? "" : ": ",
                                  absl::StrJoin(r->reasons(), "; "), "\n");
  return out;
}

// Exit code 0 when federation with the server works (no ERROR finding),
// 1 when it does not.
CommandResult Diagnose(Session& s, const Args& args) {
  if (args.positional.size() != 1) return Unusable("diagnose: give one SERVER");
  v1::DiagnoseServerRequest req;
  req.set_server_name(args.positional[0]);
  absl::StatusOr<v1::DiagnoseServerResponse> r = s.client->DiagnoseServer(req);
  if (!r.ok()) return RpcFailed(r.status());
  CommandResult out;
  out.exit_code = r->federation_ok() ? kExitValid : kExitInvalid;
  out.out = s.json ? DiagnoseJson(*r) : DiagnoseText(*r);
  return out;
}

CommandResult Health(Session& s) {
  absl::StatusOr<bool> serving = s.client->Serving();
  if (!serving.ok()) return RpcFailed(serving.status());
  CommandResult out;
  out.exit_code = *serving ? kExitValid : kExitInvalid;
  out.out = s.json ? absl::StrCat("{\"serving\":", *serving ? "true" : "false", "}\n")
                   : absl::StrCat(*serving ? "SERVING" : "NOT_SERVING", "\n");
  return out;
}

}  // namespace

bool IsRemoteCommand(absl::string_view name) {
  return name == "keys" || name == "verify-event" || name == "verify-events" ||
         name == "check-cert" || name == "health" || name == "diagnose";
}

bool WantsRemote(absl::string_view name, const std::vector<std::string>& argv) {
  if (name != "verify-event") return IsRemoteCommand(name);
  return std::any_of(argv.begin(), argv.end(), [](const std::string& a) {
    return a == "--target" || absl::StartsWith(a, "--target=");
  });
}

std::string RemoteUsage() {
  return "  keys SERVER [--min-valid-until MS]\n"
         "  verify-event --target HOST:PORT --room-version V [FILE]\n"
         "  verify-events --room-version V FILE...\n"
         "  check-cert SERVER [--chain FILE.pem] [--port N]\n"
         "  diagnose SERVER       federation report; exit 0 when federation works\n"
         "  health\n"
         "  common: --target HOST:PORT --ca FILE --cert FILE --key FILE\n"
         "          --server-name NAME --timeout-ms N --json\n";
}

CommandResult RunRemoteCommand(absl::string_view name,
                               const std::vector<std::string>& argv,
                               const Environment& env) {
  std::vector<std::string> flags = CommonFlags();
  if (name == "keys") flags.push_back("min-valid-until");
  if (name == "verify-event" || name == "verify-events") flags.push_back("room-version");
  if (name == "check-cert") {
    flags.push_back("chain");
    flags.push_back("port");
  }
  absl::StatusOr<Args> args = ParseArgs(NormaliseBoolFlags(argv), flags);
  if (!args.ok()) return Unusable(absl::StrCat(name, ": ", args.status().message()));
  // A report waits for dead addresses and slow notaries: a longer default.
  absl::StatusOr<Session> session =
      Connect(*args, name == "diagnose" ? absl::Seconds(30) : absl::Seconds(10));
  if (!session.ok()) return Unusable(session.status().message());
  if (name == "keys") return Keys(*session, *args);
  if (name == "verify-event") return VerifyEvents(*session, *args, env, true);
  if (name == "verify-events") return VerifyEvents(*session, *args, env, false);
  if (name == "check-cert") return CheckCert(*session, *args, env);
  if (name == "health") return Health(*session);
  if (name == "diagnose") return Diagnose(*session, *args);
  return Unusable(absl::StrCat("unknown subcommand \"", name, "\""));
}

}  // namespace keyverifier::cli
