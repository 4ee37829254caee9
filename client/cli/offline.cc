#include "client/cli/offline.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "service/core/canonical_json.h"
#include "service/core/event_verifier.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/redaction.h"
#include "service/core/room_version.h"
#include "service/core/server_keys.h"
#include "service/core/signed_json.h"
#include "service/keyring/trusted_keys.h"
#include "service/tls/certificate_policy.h"

namespace keyverifier::cli {
namespace {

using core::Value;

CommandResult Unusable(absl::string_view why) {
  CommandResult r;
  r.exit_code = kExitUnusable;
  r.err = absl::StrCat(why, "\n");
  return r;
}

CommandResult Verdict(Value line, bool valid) {
  CommandResult r;
  r.exit_code = valid ? kExitValid : kExitInvalid;
  r.out = core::ToJson(line) + "\n";
  return r;
}

Value Strings(const std::vector<std::string>& items) {
  Value arr = Value::Array();
  for (const std::string& s : items) arr.mutable_array().push_back(Value::String(s));
  return arr;
}

Value KeyJson(const core::VerifyKey& k) {
  Value v = Value::Object();
  v.Set("key_id", Value::String(k.key_id));
  if (k.valid_until_ts) v.Set("valid_until_ts", Value::Integer(*k.valid_until_ts));
  if (k.expired_ts) v.Set("expired_ts", Value::Integer(*k.expired_ts));
  return v;
}

// Everything a subcommand needs, resolved from its flags.
struct Inputs {
  std::string document;
  const core::RoomVersion* room = nullptr;
  keyring::KeysByServer keys;
  int64_t now_ms = 0;
};

absl::StatusOr<Inputs> Resolve(const Args& args, const Environment& env,
                               bool needs_room, bool needs_keys) {
  Inputs in;
  if (args.positional.size() > 1) {
    return absl::InvalidArgumentError("at most one input FILE");
  }
  std::string path = args.positional.empty() ? "-" : args.positional[0];
  absl::StatusOr<std::string> doc = env.read_file(path);
  if (!doc.ok()) return doc.status();
  in.document = *std::move(doc);

  auto room = args.flags.find("room-version");
  if (room != args.flags.end()) {
    absl::StatusOr<const core::RoomVersion*> v = core::LookupRoomVersion(room->second);
    if (!v.ok()) return v.status();
    in.room = *v;
  } else if (needs_room) {
    return absl::InvalidArgumentError("--room-version is required");
  }

  auto keys = args.flags.find("keys");
  if (keys != args.flags.end()) {
    absl::StatusOr<std::string> text = env.read_file(keys->second);
    if (!text.ok()) return text.status();
    absl::StatusOr<keyring::KeysByServer> parsed = keyring::ParseKeysFile(*text);
    if (!parsed.ok()) return parsed.status();
    in.keys = *std::move(parsed);
  } else if (needs_keys) {
    return absl::InvalidArgumentError("--keys KEYS.json is required");
  }

  auto now = args.flags.find("now");
  if (now != args.flags.end()) {
    if (!absl::SimpleAtoi(now->second, &in.now_ms)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--now \"", now->second, "\" is not milliseconds"));
    }
  } else {
    in.now_ms = env.now_ms();
  }
  return in;
}

CommandResult CanonicalJsonCommand(const Inputs& in) {
  absl::StatusOr<Value> v = core::ParseJson(in.document);
  if (!v.ok()) return Unusable(v.status().message());
  absl::StatusOr<std::string> out = core::CanonicalJson(
      *v, in.room ? in.room->number_policy : core::NumberPolicy::kSpec);
  if (!out.ok()) return Unusable(out.status().message());
  CommandResult r;
  r.exit_code = kExitValid;
  r.out = *std::move(out);
  return r;
}

CommandResult RedactCommand(const Inputs& in) {
  absl::StatusOr<Value> v = core::ParseJson(in.document);
  if (!v.ok()) return Unusable(v.status().message());
  if (!v->is_object()) return Unusable("event: not a JSON object");
  core::RedactEvent(in.room->redaction, &*v);
  absl::StatusOr<std::string> out = core::CanonicalJson(*v, in.room->number_policy);
  if (!out.ok()) return Unusable(out.status().message());
  CommandResult r;
  r.exit_code = kExitValid;
  r.out = *std::move(out);
  return r;
}

CommandResult VerifyJsonCommand(const Inputs& in, const std::string& server) {
  absl::StatusOr<Value> v = core::ParseJson(in.document);
  if (!v.ok()) return Unusable(v.status().message());
  if (!v->is_object()) return Unusable("not a JSON object");
  auto keys = in.keys.find(server);
  absl::Span<const core::VerifyKey> known;
  if (keys != in.keys.end()) known = keys->second;
  absl::StatusOr<core::SignatureCheck> c = core::VerifySignedJson(*v, server, known);
  if (!c.ok()) return Unusable(c.status().message());
  Value line = Value::Object();
  line.Set("verdict", Value::String(c->ok() ? "valid" : "invalid"));
  line.Set("reason", Value::String(std::string(core::ReasonName(c->reason))));
  if (!c->message.empty()) line.Set("message", Value::String(c->message));
  line.Set("server", Value::String(server));
  line.Set("key_ids", Strings(c->key_ids_verified));
  return Verdict(std::move(line), c->ok());
}

CommandResult VerifyEventCommand(const Inputs& in) {
  absl::StatusOr<core::PreparedEvent> p = core::PrepareEvent(in.document, *in.room);
  if (!p.ok()) return Unusable(p.status().message());
  core::KeyLookup lookup = [&](absl::string_view server) {
    auto it = in.keys.find(std::string(server));
    return it == in.keys.end() ? absl::Span<const core::VerifyKey>()
                               : absl::Span<const core::VerifyKey>(it->second);
  };
  core::EventVerdict v = core::VerifyPreparedEvent(*p, lookup);
  Value line = Value::Object();
  line.Set("verdict", Value::String(std::string(core::OutcomeName(v.outcome))));
  line.Set("reason", Value::String(std::string(core::ReasonName(v.reason))));
  if (!v.message.empty()) line.Set("message", Value::String(v.message));
  line.Set("event_id", Value::String(p->event_id));
  line.Set("room_version", Value::String(std::string(in.room->id)));
  line.Set("content_hash", Value::String(p->content_hash));
  line.Set("content_hash_matches", Value::Bool(p->content_hash_matches));
  Value required = Value::Array();
  for (const core::ServerName& server : p->required_servers) {
    required.mutable_array().push_back(Value::String(server.str()));
  }
  line.Set("required_servers", std::move(required));
  Value checked = Value::Array();
  for (const auto& c : v.checked) {
    Value s = Value::Object();
    s.Set("server", Value::String(c.server));
    s.Set("key_ids", Strings(c.key_ids));
    checked.mutable_array().push_back(std::move(s));
  }
  line.Set("checked", std::move(checked));
  if (v.outcome == core::EventVerdict::Outcome::kValidButRedacted) {
    absl::StatusOr<Value> redacted = core::RedactedEvent(*p);
    if (!redacted.ok()) return Unusable(redacted.status().message());
    line.Set("redacted_event", *std::move(redacted));
  }
  return Verdict(std::move(line), v.outcome == core::EventVerdict::Outcome::kValid);
}

CommandResult CheckServerKeysCommand(const Inputs& in, const Args& args) {
  absl::StatusOr<Value> v = core::ParseJson(in.document);
  if (!v.ok()) return Unusable(v.status().message());
  if (!v->is_object()) return Unusable("key response: not a JSON object");
  core::ServerKeyExpectations expect;
  auto server = args.flags.find("server");
  if (server != args.flags.end()) expect.server_name = server->second;
  absl::StatusOr<core::ServerKeys> keys = core::ParseServerKeys(*v, expect);
  Value line = Value::Object();
  if (!keys.ok()) {
    line.Set("verdict", Value::String("invalid"));
    line.Set("reason", Value::String("invalid_key_response"));
    line.Set("message", Value::String(std::string(keys.status().message())));
    return Verdict(std::move(line), false);
  }
  line.Set("verdict", Value::String("valid"));
  line.Set("reason", Value::String("ok"));
  line.Set("server_name", Value::String(keys->server_name));
  line.Set("valid_until_ts", Value::Integer(keys->valid_until_ts));
  // A response past its valid_until_ts is still correctly signed; say so
  // rather than failing, as old events may still need it.
  line.Set("expired", Value::Bool(keys->valid_until_ts < in.now_ms));
  Value current = Value::Array();
  for (const auto& k : keys->verify_keys) current.mutable_array().push_back(KeyJson(k));
  Value old = Value::Array();
  for (const auto& k : keys->old_verify_keys) old.mutable_array().push_back(KeyJson(k));
  line.Set("verify_keys", std::move(current));
  line.Set("old_verify_keys", std::move(old));
  return Verdict(std::move(line), true);
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

Value CertificateJson(const tls::CertificateInfo& c) {
  Value v = Value::Object();
  v.Set("subject", Value::String(c.subject));
  v.Set("issuer", Value::String(c.issuer));
  v.Set("dns_names", Strings(c.dns_names));
  v.Set("ip_addresses", Strings(c.ip_addresses));
  v.Set("not_before", Value::String(Rfc3339(c.not_before)));
  v.Set("not_after", Value::String(Rfc3339(c.not_after)));
  v.Set("sha256", Value::String(c.sha256));
  return v;
}

// check-chain: the certificate policy on a PEM chain, with the given roots
// (or the system bundle) at the given time (or now).
CommandResult CheckChainCommand(const Args& args, const Environment& env) {
  if (!args.positional.empty()) {
    return Unusable("check-chain: takes no FILE; use --chain");
  }
  auto name = args.flags.find("name");
  if (name == args.flags.end()) return Unusable("check-chain: --name NAME is required");
  auto chain_path = args.flags.find("chain");
  if (chain_path == args.flags.end()) {
    return Unusable("check-chain: --chain CHAIN.pem is required");
  }
  absl::StatusOr<tls::PeerName> peer = tls::PeerName::Parse(name->second);
  if (!peer.ok()) {
    return Unusable(absl::StrCat("check-chain: --name: ", peer.status().message()));
  }

  absl::StatusOr<std::string> chain_text = env.read_file(chain_path->second);
  if (!chain_text.ok()) {
    return Unusable(absl::StrCat("check-chain: ", chain_text.status().message()));
  }
  absl::StatusOr<std::vector<tls::X509Ptr>> chain =
      tls::ParseCertificates(*chain_text, absl::StrCat("--chain ", chain_path->second));
  if (!chain.ok()) {
    return Unusable(absl::StrCat("check-chain: ", chain.status().message()));
  }

  auto roots_flag = args.flags.find("roots");
  std::string roots_path = roots_flag == args.flags.end()
                               ? std::string(tls::kDebianCaBundle)
                               : roots_flag->second;
  absl::StatusOr<std::string> roots_text = env.read_file(roots_path);
  if (!roots_text.ok()) {
    return Unusable(absl::StrCat("check-chain: ", roots_text.status().message()));
  }
  absl::StatusOr<std::vector<tls::X509Ptr>> roots =
      tls::ParseCertificates(*roots_text, absl::StrCat("roots ", roots_path));
  if (!roots.ok()) {
    return Unusable(absl::StrCat("check-chain: ", roots.status().message()));
  }

  absl::Time at = absl::FromUnixMillis(env.now_ms());
  auto at_flag = args.flags.find("at");
  if (at_flag != args.flags.end()) {
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, at_flag->second, &at, &err)) {
      return Unusable(absl::StrCat("check-chain: --at \"", at_flag->second,
                                   "\" is not an RFC 3339 time: ", err));
    }
  }

  tls::CertificatePolicyOptions options;
  absl::StatusOr<std::shared_ptr<const tls::TrustStore>> store =
      tls::TrustStore::FromCertificates(*std::move(roots));
  if (!store.ok()) {
    return Unusable(absl::StrCat("check-chain: ", store.status().message()));
  }
  options.trust_store = *std::move(store);
  absl::StatusOr<std::unique_ptr<tls::CertificatePolicy>> policy =
      tls::CertificatePolicy::Create(std::move(options));
  if (!policy.ok()) {
    return Unusable(absl::StrCat("check-chain: ", policy.status().message()));
  }
  tls::Verdict v = (*policy)->Check(*chain, *peer, at);

  Value line = Value::Object();
  line.Set("verdict", Value::String(v.valid ? "valid" : "invalid"));
  line.Set("name", Value::String(peer->text));
  line.Set("at", Value::String(Rfc3339(at)));
  line.Set("rule", Value::String(std::string(tls::AppliedRuleName(v.rule))));
  Value reasons = Value::Array();
  for (const tls::Finding& f : v.reasons) {
    Value r = Value::Object();
    r.Set("reason", Value::String(std::string(tls::ReasonName(f.reason))));
    r.Set("message", Value::String(f.message));
    reasons.mutable_array().push_back(std::move(r));
  }
  line.Set("reasons", std::move(reasons));
  Value presented = Value::Array();
  for (const tls::CertificateInfo& c : v.presented) {
    presented.mutable_array().push_back(CertificateJson(c));
  }
  line.Set("presented", std::move(presented));
  Value verified = Value::Array();
  for (const tls::CertificateInfo& c : v.verified_chain) {
    verified.mutable_array().push_back(CertificateJson(c));
  }
  line.Set("verified_chain", std::move(verified));
  return Verdict(std::move(line), v.valid);
}

struct Command {
  absl::string_view name;
  std::vector<std::string> flags;
  bool needs_room;
  bool needs_keys;
};

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"canonical-json", {"room-version"}, false, false},
      {"redact", {"room-version"}, true, false},
      {"verify-json", {"server", "keys", "now"}, false, true},
      {"verify-event", {"room-version", "keys", "now"}, true, true},
      {"check-server-keys", {"server", "now"}, false, false},
      {"check-chain", {"name", "chain", "roots", "at"}, false, false},
  };
  return *commands;
}

}  // namespace

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const std::vector<std::string>& known_flags) {
  Args args;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (!absl::StartsWith(a, "--") || a == "-") {
      args.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::string value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < argv.size()) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    if (std::find(known_flags.begin(), known_flags.end(), name) ==
        known_flags.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    args.flags[name] = value;
  }
  return args;
}

bool IsOfflineCommand(absl::string_view name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return true;
  }
  return false;
}

std::string OfflineUsage() {
  return "  canonical-json [--room-version V] [FILE]\n"
         "  redact --room-version V [FILE]\n"
         "  verify-json --server NAME --keys KEYS.json [FILE]\n"
         "  verify-event --room-version V --keys KEYS.json [--now MS] [FILE]\n"
         "  check-server-keys [--server NAME] [--now MS] [FILE]\n"
         "  check-chain --name NAME --chain CHAIN.pem [--roots ROOTS.pem]\n"
         "              [--at RFC3339-TIME]\n";
}

CommandResult RunOfflineCommand(absl::string_view name,
                                const std::vector<std::string>& argv,
                                const Environment& env) {
  for (const Command& c : Commands()) {
    if (c.name != name) continue;
    absl::StatusOr<Args> args = ParseArgs(argv, c.flags);
    if (!args.ok()) return Unusable(absl::StrCat(name, ": ", args.status().message()));
    if (name == "check-chain") return CheckChainCommand(*args, env);
    if (name == "verify-json" && !args->flags.count("server")) {
      return Unusable("verify-json: --server NAME is required");
    }
    absl::StatusOr<Inputs> in = Resolve(*args, env, c.needs_room, c.needs_keys);
    if (!in.ok()) return Unusable(absl::StrCat(name, ": ", in.status().message()));
    if (name == "canonical-json") return CanonicalJsonCommand(*in);
    if (name == "redact") return RedactCommand(*in);
    if (name == "verify-json") return VerifyJsonCommand(*in, args->flags.at("server"));
    if (name == "verify-event") return VerifyEventCommand(*in);
    return CheckServerKeysCommand(*in, *args);
  }
  return Unusable(absl::StrCat("unknown subcommand \"", name, "\""));
}

}  // namespace keyverifier::cli
