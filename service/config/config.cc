#include "service/config/config.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <thread>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/text_format.h>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keyverifier::config {
namespace {

// Collects the text-format parser's complaints (they carry line and column).
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    errors_.push_back(absl::StrCat("line ", line + 1, ":", column + 1, ": ", message));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    AddError(line, column, message);
  }
  std::string Joined() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

absl::Status Bad(absl::string_view key, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("config: ", key, ": ", why));
}

bool HasPort(absl::string_view address) {
  size_t colon = address.rfind(':');
  uint32_t port;
  return colon != absl::string_view::npos && colon > 0 &&
         absl::SimpleAtoi(address.substr(colon + 1), &port) && port <= 65535;
}

// Tokenizer complaints are the text-format parser's to report.
class SilentErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
};

std::string Where(const google::protobuf::io::Tokenizer::Token& t) {
  return absl::StrCat("line ", t.line + 1, ":", t.column + 1, ": ");
}

// The text-format parser takes an enum's value as a bare name; given a
// string (`kind: "postgres"`, how these settings were once written) it says
// "Expected integer or identifier", and given an unknown name it names the
// field but not the names it takes. This walks the tokens, knowing the
// message each is in, and says which key is wrong and what it takes. Syntax
// errors are left to the parser.
absl::Status CheckEnumValues(absl::string_view text) {
  namespace pb = google::protobuf;
  using Tokenizer = pb::io::Tokenizer;
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  SilentErrors silent;
  Tokenizer tokens(&input, &silent);
  tokens.set_comment_style(Tokenizer::SH_COMMENT_STYLE);
  enum State { kKey, kAfterKey, kValue, kList };
  struct Scope {
    const pb::Descriptor* message;  // null: not a message of the config
    std::string path;               // "fetch.notaries"; "" at the top
    // Opened in a list of messages (notaries: [{...}, {...}]): the list's
    // field, to return to.
    const pb::FieldDescriptor* list = nullptr;
  };
  std::vector<Scope> scopes = {{v1::Config::descriptor(), ""}};
  const pb::FieldDescriptor* field = nullptr;  // the key just read (null: unknown)
  std::string key;                             // its dotted path
  State state = kKey;
  const auto is = [&](const char* symbol) {
    return tokens.current().type == Tokenizer::TYPE_SYMBOL && tokens.current().text == symbol;
  };
  while (tokens.Next()) {
    const Tokenizer::Token& t = tokens.current();
    if (state == kKey) {
      if (t.type == Tokenizer::TYPE_IDENTIFIER) {
        const Scope& scope = scopes.back();
        field = scope.message != nullptr ? scope.message->FindFieldByName(t.text) : nullptr;
        key = scope.path.empty() ? t.text : absl::StrCat(scope.path, ".", t.text);
        state = kAfterKey;
      } else if ((is("}") || is(">")) && scopes.size() > 1) {
        if (scopes.back().list != nullptr) {
          field = scopes.back().list;
          key = scopes.back().path;
          state = kList;
        }
        scopes.pop_back();
      }
      continue;
    }
    if (is("{") || is("<")) {  // a message: after its key, or in a list
      scopes.push_back({field != nullptr ? field->message_type() : nullptr, key,
                        state == kList ? field : nullptr});
      state = kKey;
      continue;
    }
    if (state == kAfterKey) {
      state = is(":") ? kValue : kKey;
      continue;
    }
    if (state == kValue && is("[")) {
      state = kList;
      continue;
    }
    if (state == kList && (is("]") || is(","))) {
      if (is("]")) state = kKey;
      continue;
    }
    const pb::EnumDescriptor* type =
        field != nullptr && field->type() == pb::FieldDescriptor::TYPE_ENUM ? field->enum_type()
                                                                            : nullptr;
    if (type != nullptr && t.type == Tokenizer::TYPE_STRING) {
      std::string value;
      Tokenizer::ParseString(t.text, &value);
      if (type->FindValueByName(value) != nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(t), key, ": ", t.text, " is quoted; write the name bare, ", field->name(), ": ",
            value, " (one of ", EnumNames(*type), ")"));
      }
      // An old value that is no name ("1.3"): the name that ends with it.
      std::string suffix = absl::AsciiStrToLower(value);
      absl::c_replace_if(suffix, [](char ch) { return ch == '.' || ch == '-'; }, '_');
      for (int i = 0; i < type->value_count() && suffix.size() >= 3; ++i) {
        if (type->value(i)->number() != 0 && absl::EndsWith(type->value(i)->name(), suffix)) {
          return absl::InvalidArgumentError(absl::StrCat(
              Where(t), key, ": ", t.text, " is written ", field->name(), ": ",
              type->value(i)->name(), " (one of ", EnumNames(*type), ")"));
        }
      }
      return absl::InvalidArgumentError(absl::StrCat(Where(t), key, ": ", t.text,
                                                     " is not one of ", EnumNames(*type),
                                                     " (written bare, without quotes)"));
    }
    if (type != nullptr && t.type == Tokenizer::TYPE_IDENTIFIER &&
        type->FindValueByName(t.text) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(Where(t), key, ": \"", t.text,
                                                     "\" is not one of ", EnumNames(*type)));
    }
    if (state == kValue && !is("-")) state = kKey;
  }
  return absl::OkStatus();
}

}  // namespace

Settings Effective(const v1::Config& c) {
  // The defaults, each once; config.proto documents the same numbers
  // (tests/config checks them against this). proto3 cannot tell an unset
  // field from zero or empty: those mean the default.
  const auto str = [](const std::string& v, const char* fallback) {
    return v.empty() ? std::string(fallback) : v;
  };
  const auto num = [](uint32_t v, uint32_t fallback) -> uint32_t { return v != 0 ? v : fallback; };
  const auto count = [&](uint32_t v, uint32_t fallback) {
    return static_cast<int>(std::min<uint32_t>(num(v, fallback), INT32_MAX));
  };
  const auto ms = [&](uint32_t v, uint32_t fallback) {
    return absl::Milliseconds(num(v, fallback));
  };
  const auto seconds = [&](uint32_t v, uint32_t fallback) {
    return absl::Seconds(num(v, fallback));
  };
  const auto mib = [&](uint32_t v, uint32_t fallback) { return size_t{num(v, fallback)} << 20; };
  // An enum setting: *_UNSPECIFIED (0), or a number that is no name, is
  // the default.
  const auto named = [](auto value, decltype(value) fallback, bool (*is_valid)(int)) {
    return value != 0 && is_valid(value) ? value : fallback;
  };
  const auto list = [](const google::protobuf::RepeatedPtrField<std::string>& v) {
    return std::vector<std::string>(v.begin(), v.end());
  };

  Settings s;
  s.listen = str(c.listen(), "127.0.0.1:8470");
  s.metrics_listen = str(c.metrics_listen(), "127.0.0.1:9470");
  s.data_dir = str(c.data_dir(), "keyverifier-data");
  s.log_level = str(c.log_level(), "info");
  s.workers = c.workers() != 0
                  ? count(c.workers(), 1)
                  : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  s.grace = seconds(c.grace_seconds(), 10);
  s.trusted_keys_file = c.trusted_keys_file();

  const v1::Config::Limits& l = c.limits();
  s.limits.max_events_per_batch = num(l.max_events_per_batch(), 1000);
  s.limits.max_event_bytes = num(l.max_event_bytes(), 65536);
  s.limits.max_request_bytes = std::min<uint32_t>(num(l.max_request_bytes(), 16 << 20), INT32_MAX);
  s.limits.max_call = ms(l.max_call_ms(), 60000);
  s.limits.keyring_memory_bytes = mib(l.keyring_memory_mb(), 256);
  s.limits.max_keys_per_response = num(l.max_keys_per_response(), 256);
  s.limits.max_pending_request_bytes = mib(l.max_pending_request_mb(), 256);

  s.tls.cert_file = c.tls().cert_file();
  s.tls.key_file = c.tls().key_file();
  s.tls.client_ca_file = c.tls().client_ca_file();
  s.tls.allowed_client_names = list(c.tls().allowed_client_names());
  s.tls.reload = seconds(c.tls().reload_seconds(), 60);

  const v1::Config::Store& st = c.store();
  s.store.kind = named(st.kind(), v1::Config::sqlite, v1::Config::StoreKind_IsValid);
  s.store.postgres = st.postgres();
  s.store.lease = ms(st.lease_ms(), 40000);
  s.store.lease_poll = ms(st.lease_poll_ms(), 100);
  s.store.connections = static_cast<int>(num(st.connections(), 4));

  const v1::Config::Fetch& f = c.fetch();
  s.fetch.enabled = !f.disabled();
  s.fetch.order = named(f.order(), v1::Config::direct_first, v1::Config::FetchOrder_IsValid);
  s.fetch.quorum = count(f.quorum(), 1);
  for (const v1::Config::Fetch::Notary& n : f.notaries()) {
    s.fetch.notaries.push_back({n.server_name(), {n.verify_keys().begin(), n.verify_keys().end()}});
  }
  s.fetch.connect_timeout = ms(f.connect_timeout_ms(), 5000);
  s.fetch.tls_handshake_timeout = ms(f.tls_handshake_timeout_ms(), 5000);
  s.fetch.request_timeout = ms(f.request_timeout_ms(), 30000);
  s.fetch.well_known_port =
      static_cast<uint16_t>(std::min<uint32_t>(num(f.well_known_port(), 443), 65535));
  s.fetch.max_connections = count(f.max_connections(), 256);
  s.fetch.max_connections_per_host = count(f.max_connections_per_host(), 4);
  s.fetch.notary_batch_size = num(f.notary_batch_size(), 100);
  s.fetch.budget = ms(f.budget_ms(), 30000);
  // Never so long that a slow .well-known leaves no time for the SRV
  // fallback: unset, at most half the fetch budget.
  s.fetch.well_known_timeout = f.well_known_timeout_ms() > 0
                                   ? absl::Milliseconds(f.well_known_timeout_ms())
                                   : std::min(absl::Milliseconds(10000), s.fetch.budget / 2);
  s.fetch.max_endpoints = count(f.max_endpoints(), 4);
  s.fetch.failure_backoff = seconds(f.failure_backoff_seconds(), 60);
  s.fetch.failure_backoff_max = seconds(f.failure_backoff_max_seconds(), 3600);
  s.fetch.miss_backoff = seconds(f.miss_backoff_seconds(), 60);
  s.fetch.miss_backoff_max = seconds(f.miss_backoff_max_seconds(), 3600);
  s.fetch.new_servers_per_second = num(f.new_servers_per_second(), 100);
  s.fetch.new_servers_burst = num(f.new_servers_burst(), 2000);

  s.dns.servers = c.dns().servers();
  for (const v1::Config::Dns::Host& h : c.dns().hosts()) {
    std::vector<std::string>& addresses = s.dns.hosts[h.host()];
    addresses.insert(addresses.end(), h.addresses().begin(), h.addresses().end());
  }
  s.dns.timeout = ms(c.dns().timeout_ms(), 2000);
  s.dns.max_in_flight = count(c.dns().max_in_flight(), 128);

  s.outbound.default_denylist = !c.outbound().no_default_denylist();
  s.outbound.denied = list(c.outbound().denied());
  s.outbound.allowed = list(c.outbound().allowed());
  s.outbound.nat64_prefixes = list(c.outbound().nat64_prefixes());

  const v1::Config::FederationTls& t = c.federation_tls();
  s.federation_tls.ca_mode = named(t.ca_mode(), v1::Config::system, v1::Config::CaMode_IsValid);
  s.federation_tls.ca_files = list(t.ca_files());
  s.federation_tls.whitelist = list(t.whitelist());
  s.federation_tls.min_version =
      named(t.min_version(), v1::Config::tls1_2, v1::Config::TlsVersion_IsValid);
  s.federation_tls.fingerprint_fallback_until = t.fingerprint_fallback_until();
  s.federation_tls.ct_mode = named(t.ct_mode(), v1::Config::off, v1::Config::CtMode_IsValid);
  s.federation_tls.ct_log_list = t.ct_log_list();
  s.federation_tls.ct_min_logs = count(t.ct_min_logs(), 2);

  s.refresher.enabled = !c.refresher().disabled();
  s.refresher.interval = seconds(c.refresher().interval_seconds(), 30);
  s.refresher.concurrency = count(c.refresher().concurrency(), 64);
  s.refresher.min_interval = seconds(c.refresher().min_interval_seconds(), 300);

  for (const v1::Config::BannedKey& b : c.banned_keys()) {
    s.banned_keys.push_back({b.server_name(), b.key_id(), b.public_key()});
  }

  s.notary_listen = c.notary_listen();
  const v1::Config::Notary& n = c.notary();
  s.notary.server_name = n.server_name();
  s.notary.signing_key_file = n.signing_key_file();
  s.notary.cert_file = n.cert_file();
  s.notary.key_file = n.key_file();
  s.notary.max_servers_per_query = num(n.max_servers_per_query(), 100);
  s.notary.max_key_ids_per_server = num(n.max_key_ids_per_server(), 20);
  s.notary.max_request_bytes = num(n.max_request_bytes(), 65536);
  s.notary.requests_per_second = num(n.requests_per_second(), 10);
  s.notary.burst = num(n.burst(), 50);
  s.notary.query_timeout = ms(n.query_timeout_ms(), 10000);
  s.notary.serve_own_keys = n.serve_own_keys();
  s.notary.own_keys_validity = absl::Hours(num(n.own_keys_validity_hours(), 24));
  s.notary.reload = seconds(n.reload_seconds(), 60);
  s.notary.trusted_proxies.assign(n.trusted_proxies().begin(), n.trusted_proxies().end());
  return s;
}

std::string EnumNames(const google::protobuf::EnumDescriptor& type) {
  std::vector<std::string> names;
  for (int i = 0; i < type.value_count(); ++i) {
    if (type.value(i)->number() != 0) names.push_back(type.value(i)->name());
  }
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<v1::Config> ParseConfig(absl::string_view text,
                                       absl::string_view source) {
  if (absl::Status s = CheckEnumValues(text); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config ", source, ": ", s.message()));
  }
  v1::Config config;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", source, ": ", errors.Joined()));
  }
  return config;
}

absl::Status Validate(const v1::Config& c) {
  // What the values are written as: a name a proto3 enum takes as a number
  // the file does not know; numbers past what the setting's type holds.
  const struct {
    const char* key;
    int value;
    const google::protobuf::EnumDescriptor* type;
  } enums[] = {
      {"store.kind", c.store().kind(), v1::Config::StoreKind_descriptor()},
      {"fetch.order", c.fetch().order(), v1::Config::FetchOrder_descriptor()},
      {"federation_tls.ca_mode", c.federation_tls().ca_mode(), v1::Config::CaMode_descriptor()},
      {"federation_tls.min_version", c.federation_tls().min_version(),
       v1::Config::TlsVersion_descriptor()},
      {"federation_tls.ct_mode", c.federation_tls().ct_mode(), v1::Config::CtMode_descriptor()},
  };
  for (const auto& e : enums) {
    if (e.type->FindValueByNumber(e.value) == nullptr) {
      return Bad(e.key, absl::StrCat(e.value, " is not one of ", EnumNames(*e.type)));
    }
  }
  if (c.workers() > 1024) return Bad("workers", "more than 1024");
  // gRPC takes the limit as an int, and a negative one means no limit.
  if (c.limits().max_request_bytes() > static_cast<uint32_t>(INT32_MAX)) {
    return Bad("limits.max_request_bytes", absl::StrCat(c.limits().max_request_bytes(),
                                                        " is more than ", INT32_MAX));
  }
  if (const uint32_t budget = c.fetch().budget_ms() > 0 ? c.fetch().budget_ms() : 30000;
      c.fetch().well_known_timeout_ms() >= budget) {
    return Bad("fetch.well_known_timeout_ms",
               absl::StrCat(c.fetch().well_known_timeout_ms(), " is not less than fetch.budget_ms (",
                            budget, "): a slow .well-known would leave no time for the SRV fallback"));
  }
  if (c.fetch().well_known_port() > 65535) {
    return Bad("fetch.well_known_port",
               absl::StrCat(c.fetch().well_known_port(), " is not a port"));
  }

  // The values in force.
  const Settings s = Effective(c);
  if (!HasPort(s.listen)) return Bad("listen", absl::StrCat("\"", s.listen, "\" is not HOST:PORT"));
  if (!HasPort(s.metrics_listen)) {
    return Bad("metrics_listen", absl::StrCat("\"", s.metrics_listen, "\" is not HOST:PORT"));
  }
  static constexpr absl::string_view kLevels[] = {"debug", "info", "warning", "error"};
  if (std::find(std::begin(kLevels), std::end(kLevels), s.log_level) == std::end(kLevels)) {
    return Bad("log_level", absl::StrCat("\"", s.log_level,
                                         "\" is not one of debug, info, warning, error"));
  }
  if (s.limits.max_event_bytes > s.limits.max_request_bytes) {
    return Bad("limits.max_event_bytes", "larger than limits.max_request_bytes");
  }
  if (s.tls.cert_file.empty() != s.tls.key_file.empty()) {
    return Bad(s.tls.cert_file.empty() ? "tls.cert_file" : "tls.key_file",
               "tls.cert_file and tls.key_file go together");
  }
  if (!s.tls.client_ca_file.empty() && s.tls.cert_file.empty()) {
    return Bad("tls.client_ca_file", "mutual TLS needs tls.cert_file and tls.key_file");
  }
  if (!s.tls.allowed_client_names.empty() && s.tls.client_ca_file.empty()) {
    return Bad("tls.allowed_client_names", "needs tls.client_ca_file (mutual TLS)");
  }
  if (!s.notary_listen.empty()) {
    if (!HasPort(s.notary_listen)) {
      return Bad("notary_listen", absl::StrCat("\"", s.notary_listen, "\" is not HOST:PORT"));
    }
    if (s.notary.server_name.empty()) {
      return Bad("notary.server_name", "required with notary_listen");
    }
    if (s.notary.signing_key_file.empty()) {
      return Bad("notary.signing_key_file", "required with notary_listen");
    }
    if (s.notary.cert_file.empty() != s.notary.key_file.empty()) {
      return Bad(s.notary.cert_file.empty() ? "notary.cert_file" : "notary.key_file",
                 "notary.cert_file and notary.key_file go together");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Config> LoadConfig(
    const std::vector<std::string>& args,
    const std::function<absl::StatusOr<std::string>(const std::string&)>& read_file) {
  std::vector<std::pair<std::string, std::string>> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    if (!absl::StartsWith(name, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", name, "\""));
    }
    name = name.substr(2);
    std::string value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    flags.emplace_back(name, value);
  }
  v1::Config config;
  for (const auto& [name, value] : flags) {
    if (name != "config") continue;
    absl::StatusOr<std::string> text = read_file(value);
    if (!text.ok()) return text.status();
    absl::StatusOr<v1::Config> parsed = ParseConfig(*text, value);
    if (!parsed.ok()) return parsed.status();
    config = *std::move(parsed);
  }
  for (const auto& [name, value] : flags) {
    uint32_t n = 0;
    if (name == "config") continue;
    // Empty means the default in the file; a flag given empty is a mistake.
    if (value.empty() && (name == "listen" || name == "metrics_listen" || name == "data_dir" ||
                          name == "log_level")) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    if (name == "listen") {
      config.set_listen(value);
    } else if (name == "metrics_listen") {
      config.set_metrics_listen(value);
    } else if (name == "data_dir") {
      config.set_data_dir(value);
    } else if (name == "log_level") {
      config.set_log_level(value);
    } else if (name == "notary_listen") {
      config.set_notary_listen(value);
    } else if (name == "trusted_keys") {
      config.set_trusted_keys_file(value);
    } else if (name == "workers" || name == "grace_seconds") {
      if (!absl::SimpleAtoi(value, &n)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " \"", value, "\" is not a non-negative integer"));
      }
      name == "workers" ? config.set_workers(n) : config.set_grace_seconds(n);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  if (absl::Status s = Validate(config); !s.ok()) return s;
  return config;
}

std::string FlagsUsage() {
  return "usage: keyverifier [--config FILE] [--listen HOST:PORT]\n"
         "                   [--metrics_listen HOST:PORT] [--data_dir DIR]\n"
         "                   [--log_level debug|info|warning|error] [--workers N]\n"
         "                   [--grace_seconds N] [--trusted_keys FILE]\n"
         "                   [--notary_listen HOST:PORT]\n"
         "FILE is protobuf text format; see protos/keyverifier/v1/config.proto.\n";
}

}  // namespace keyverifier::config
