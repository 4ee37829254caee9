// Loading the service configuration: the file (protobuf text format, see
// protos/keyverifier/v1/config.proto), then command-line flags, validated
// once at start; errors name the file, line and the bad key. Then the one
// place defaults live: Effective() turns the proto (where unset, zero and
// empty mean "the default") into Settings, plain values every one of them
// in force, which App and main.cc read.
#ifndef KEYVERIFIER_SERVICE_CONFIG_CONFIG_H_
#define KEYVERIFIER_SERVICE_CONFIG_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "keyverifier/v1/config.pb.h"

namespace keyverifier::config {

using StoreKind = v1::Config::StoreKind;
using FetchOrder = v1::Config::FetchOrder;
using CaMode = v1::Config::CaMode;
using TlsVersion = v1::Config::TlsVersion;
using CtMode = v1::Config::CtMode;

// Every setting of config.proto with the value in force: defaults applied,
// units in the types (durations, bytes), enums never *_UNSPECIFIED. Field
// names follow config.proto's; the defaults are documented there, once.
struct Settings {
  std::string listen;
  std::string metrics_listen;
  std::string data_dir;
  std::string log_level;  // debug, info, warning or error
  int workers = 0;        // resolved: one per core when the file says 0
  absl::Duration grace;
  std::string trusted_keys_file;  // empty: none

  struct Limits {
    size_t max_events_per_batch = 0;
    size_t max_event_bytes = 0;
    size_t max_request_bytes = 0;
    absl::Duration max_call;
    size_t keyring_memory_bytes = 0;
    size_t max_keys_per_response = 0;
    size_t max_pending_request_bytes = 0;
  } limits;

  struct Tls {
    std::string cert_file;  // empty: no TLS
    std::string key_file;
    std::string client_ca_file;
    std::vector<std::string> allowed_client_names;
    absl::Duration reload;  // how often the files are read again
  } tls;

  struct Store {
    StoreKind kind = v1::Config::sqlite;
    std::string postgres;
    absl::Duration lease;
    absl::Duration lease_poll;
    int connections = 0;
  } store;

  struct Notary {  // one of fetch.notaries
    std::string server_name;
    std::map<std::string, std::string> verify_keys;  // key id -> base64
  };
  struct Fetch {
    bool enabled = true;
    FetchOrder order = v1::Config::direct_first;
    int quorum = 0;
    std::vector<Notary> notaries;
    absl::Duration connect_timeout;
    absl::Duration tls_handshake_timeout;
    absl::Duration request_timeout;
    uint16_t well_known_port = 0;
    int max_connections = 0;
    int max_connections_per_host = 0;
    size_t notary_batch_size = 0;
    absl::Duration budget;
    absl::Duration well_known_timeout;
    int max_endpoints = 0;
    absl::Duration failure_backoff;
    absl::Duration failure_backoff_max;
    absl::Duration miss_backoff;
    absl::Duration miss_backoff_max;
    double new_servers_per_second = 0;
    double new_servers_burst = 0;
  } fetch;

  struct Dns {
    std::string servers;  // empty: /etc/resolv.conf
    std::map<std::string, std::vector<std::string>> hosts;
    absl::Duration timeout;
    int max_in_flight = 0;
  } dns;

  struct Outbound {
    bool default_denylist = true;
    std::vector<std::string> denied;
    std::vector<std::string> allowed;
    std::vector<std::string> nat64_prefixes;
  } outbound;

  struct FederationTls {
    CaMode ca_mode = v1::Config::system;
    std::vector<std::string> ca_files;
    std::vector<std::string> whitelist;
    TlsVersion min_version = v1::Config::tls1_2;
    std::string fingerprint_fallback_until;  // RFC 3339; empty: off
    CtMode ct_mode = v1::Config::off;
    std::string ct_log_list;
    int ct_min_logs = 0;
  } federation_tls;

  struct Refresher {
    bool enabled = true;
    absl::Duration interval;
    int concurrency = 0;
    absl::Duration min_interval;
  } refresher;

  struct BannedKey {
    std::string server_name;
    std::string key_id;
    std::string public_key;
  };
  std::vector<BannedKey> banned_keys;

  std::string notary_listen;  // empty: no notary
  struct NotaryServer {
    std::string server_name;
    std::string signing_key_file;
    std::string cert_file;
    std::string key_file;
    size_t max_servers_per_query = 0;
    size_t max_key_ids_per_server = 0;
    size_t max_request_bytes = 0;
    double requests_per_second = 0;
    double burst = 0;
    absl::Duration query_timeout;
    bool serve_own_keys = false;
    absl::Duration own_keys_validity;
    std::vector<std::string> trusted_proxies;
    absl::Duration reload;  // how often cert_file and key_file are read again
  } notary;
};

// The settings in force for `config`: its values, and the defaults where it
// has none. Meant for a config Validate accepted (LoadConfig's); of another,
// values out of range are clamped and unknown enum numbers read as the
// default.
Settings Effective(const v1::Config& config);

// The names an enum setting takes, as written in the file ("sqlite,
// postgres, memory"), for messages.
std::string EnumNames(const google::protobuf::EnumDescriptor& type);

// Parses text-format `text` (named `source` in errors). An enum setting
// written as a string (kind: "postgres") is refused with the key and the
// names it takes.
absl::StatusOr<v1::Config> ParseConfig(absl::string_view text, absl::string_view source);

// Applies "--name value" / "--name=value" flags: --config FILE (read through
// `read_file`), --listen, --metrics_listen, --data_dir, --log_level, --workers,
// --grace_seconds, --trusted_keys. Flags win over the file. Then validates.
absl::StatusOr<v1::Config> LoadConfig(
    const std::vector<std::string>& args,
    const std::function<absl::StatusOr<std::string>(const std::string&)>& read_file);

// Checks values a text-format parse cannot: names the key that is wrong.
absl::Status Validate(const v1::Config& config);

// Usage text for the flags.
std::string FlagsUsage();

}  // namespace keyverifier::config

#endif  // KEYVERIFIER_SERVICE_CONFIG_CONFIG_H_
