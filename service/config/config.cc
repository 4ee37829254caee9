#include "service/config/config.h"

#include <algorithm>
#include <cstdint>
#include <functional>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

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

}  // namespace

v1::Config Defaults() {
  v1::Config c;
  c.set_listen("127.0.0.1:8470");
  c.set_metrics_listen("127.0.0.1:9470");
  c.set_data_dir("keyverifier-data");
  c.set_log_level("info");
  c.set_grace_seconds(10);
  c.mutable_limits()->set_max_events_per_batch(1000);
  c.mutable_limits()->set_max_event_bytes(65536);
  c.mutable_limits()->set_max_request_bytes(16 << 20);
  return c;
}

absl::StatusOr<v1::Config> ParseConfig(absl::string_view text,
                                       absl::string_view source) {
  v1::Config from_file;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &from_file)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", source, ": ", errors.Joined()));
  }
  v1::Config merged = Defaults();
  // proto3 scalars cannot say "unset"; zero/empty in the file keeps the default.
  const v1::Config defaults = merged;
  merged.MergeFrom(from_file);
  if (from_file.limits().max_events_per_batch() == 0)
    merged.mutable_limits()->set_max_events_per_batch(defaults.limits().max_events_per_batch());
  if (from_file.limits().max_event_bytes() == 0)
    merged.mutable_limits()->set_max_event_bytes(defaults.limits().max_event_bytes());
  if (from_file.limits().max_request_bytes() == 0)
    merged.mutable_limits()->set_max_request_bytes(defaults.limits().max_request_bytes());
  return merged;
}

absl::Status Validate(const v1::Config& c) {
  if (!HasPort(c.listen())) return Bad("listen", absl::StrCat("\"", c.listen(), "\" is not HOST:PORT"));
  if (!HasPort(c.metrics_listen())) {
    return Bad("metrics_listen", absl::StrCat("\"", c.metrics_listen(), "\" is not HOST:PORT"));
  }
  if (c.data_dir().empty()) return Bad("data_dir", "must not be empty");
  static constexpr absl::string_view kLevels[] = {"debug", "info", "warning", "error"};
  if (std::find(std::begin(kLevels), std::end(kLevels), c.log_level()) == std::end(kLevels)) {
    return Bad("log_level", absl::StrCat("\"", c.log_level(),
                                         "\" is not one of debug, info, warning, error"));
  }
  if (c.workers() > 1024) return Bad("workers", "more than 1024");
  // gRPC takes the limit as an int, and a negative one means no limit.
  if (c.limits().max_request_bytes() > static_cast<uint32_t>(INT32_MAX)) {
    return Bad("limits.max_request_bytes", absl::StrCat(c.limits().max_request_bytes(),
                                                        " is more than ", INT32_MAX));
  }
  if (c.limits().max_event_bytes() > c.limits().max_request_bytes()) {
    return Bad("limits.max_event_bytes", "larger than limits.max_request_bytes");
  }
  const auto& tls = c.tls();
  if (tls.cert_file().empty() != tls.key_file().empty()) {
    return Bad(tls.cert_file().empty() ? "tls.cert_file" : "tls.key_file",
               "tls.cert_file and tls.key_file go together");
  }
  if (!tls.client_ca_file().empty() && tls.cert_file().empty()) {
    return Bad("tls.client_ca_file", "mutual TLS needs tls.cert_file and tls.key_file");
  }
  if (tls.allowed_client_names_size() > 0 && tls.client_ca_file().empty()) {
    return Bad("tls.allowed_client_names", "needs tls.client_ca_file (mutual TLS)");
  }
  if (!c.notary_listen().empty()) {
    if (!HasPort(c.notary_listen())) {
      return Bad("notary_listen", absl::StrCat("\"", c.notary_listen(), "\" is not HOST:PORT"));
    }
    if (c.notary().server_name().empty()) return Bad("notary.server_name", "required with notary_listen");
    if (c.notary().signing_key_file().empty()) {
      return Bad("notary.signing_key_file", "required with notary_listen");
    }
    if (c.notary().cert_file().empty() != c.notary().key_file().empty()) {
      return Bad(c.notary().cert_file().empty() ? "notary.cert_file" : "notary.key_file",
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
  v1::Config config = Defaults();
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
