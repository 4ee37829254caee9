// Loading the configuration: defaults, the text file, flags over it, and
// validation errors that name the key (and line) that is wrong.
#include "service/config/config.h"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace keyverifier::config {
namespace {

absl::StatusOr<v1::Config> Load(const std::vector<std::string>& args,
                                const std::map<std::string, std::string>& files = {}) {
  return LoadConfig(args, [&](const std::string& path) -> absl::StatusOr<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return absl::NotFoundError(path + ": no such file");
    return it->second;
  });
}

TEST(ConfigTest, AnEmptyConfigIsValid) {
  const v1::Config empty;
  EXPECT_TRUE(Validate(empty).ok()) << Validate(empty);
  absl::StatusOr<v1::Config> loaded = Load({});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Settings s = Effective(*loaded);
  EXPECT_EQ(s.listen, "127.0.0.1:8470");
  EXPECT_EQ(s.metrics_listen, "127.0.0.1:9470");
  EXPECT_EQ(s.data_dir, "keyverifier-data");
  EXPECT_GE(s.workers, 1);  // one per core
}

// Every setting of an empty config, in force: the defaults, in the units
// the components take.
TEST(ConfigTest, EffectiveDefaults) {
  const Settings s = Effective(v1::Config());
  EXPECT_EQ(s.log_level, "info");
  EXPECT_EQ(s.grace, absl::Seconds(10));
  EXPECT_EQ(s.trusted_keys_file, "");
  EXPECT_EQ(s.limits.max_events_per_batch, 1000u);
  EXPECT_EQ(s.limits.max_event_bytes, 65536u);
  EXPECT_EQ(s.limits.max_request_bytes, 16u << 20);
  EXPECT_EQ(s.limits.max_call, absl::Seconds(60));
  EXPECT_EQ(s.limits.keyring_memory_bytes, size_t{256} << 20);
  EXPECT_EQ(s.limits.max_keys_per_response, 256u);
  EXPECT_EQ(s.limits.max_pending_request_bytes, size_t{256} << 20);
  EXPECT_EQ(s.store.kind, v1::Config::sqlite);
  EXPECT_EQ(s.store.lease, absl::Seconds(40));
  EXPECT_EQ(s.store.lease_poll, absl::Milliseconds(100));
  EXPECT_TRUE(s.fetch.enabled);
  EXPECT_EQ(s.fetch.order, v1::Config::direct_first);
  EXPECT_EQ(s.fetch.quorum, 1);
  EXPECT_TRUE(s.fetch.notaries.empty());
  EXPECT_EQ(s.fetch.connect_timeout, absl::Seconds(5));
  EXPECT_EQ(s.fetch.tls_handshake_timeout, absl::Seconds(5));
  EXPECT_EQ(s.fetch.request_timeout, absl::Seconds(30));
  EXPECT_EQ(s.fetch.well_known_port, 443);
  EXPECT_EQ(s.fetch.max_connections, 256);
  EXPECT_EQ(s.fetch.max_connections_per_host, 4);
  EXPECT_EQ(s.fetch.notary_batch_size, 100u);
  EXPECT_EQ(s.fetch.budget, absl::Seconds(30));
  EXPECT_EQ(s.fetch.well_known_timeout, absl::Seconds(10));
  EXPECT_EQ(s.fetch.max_endpoints, 4);
  EXPECT_EQ(s.fetch.failure_backoff, absl::Minutes(1));
  EXPECT_EQ(s.fetch.failure_backoff_max, absl::Hours(1));
  EXPECT_EQ(s.fetch.miss_backoff, absl::Minutes(1));
  EXPECT_EQ(s.fetch.miss_backoff_max, absl::Hours(1));
  EXPECT_EQ(s.fetch.new_servers_per_second, 100);
  EXPECT_EQ(s.fetch.new_servers_burst, 2000);
  EXPECT_EQ(s.dns.servers, "");
  EXPECT_EQ(s.dns.timeout, absl::Seconds(2));
  EXPECT_EQ(s.dns.max_in_flight, 128);
  EXPECT_TRUE(s.outbound.default_denylist);
  EXPECT_EQ(s.federation_tls.ca_mode, v1::Config::system);
  EXPECT_EQ(s.federation_tls.min_version, v1::Config::tls1_2);
  EXPECT_EQ(s.federation_tls.ct_mode, v1::Config::off);
  EXPECT_EQ(s.federation_tls.ct_min_logs, 2);
  EXPECT_TRUE(s.refresher.enabled);
  EXPECT_EQ(s.refresher.interval, absl::Seconds(30));
  EXPECT_EQ(s.refresher.concurrency, 64);
  EXPECT_EQ(s.refresher.min_interval, absl::Minutes(5));
  EXPECT_EQ(s.notary_listen, "");
  EXPECT_EQ(s.notary.max_servers_per_query, 100u);
  EXPECT_EQ(s.notary.max_key_ids_per_server, 20u);
  EXPECT_EQ(s.notary.max_request_bytes, 65536u);
  EXPECT_EQ(s.notary.requests_per_second, 10);
  EXPECT_EQ(s.notary.burst, 50);
  EXPECT_EQ(s.notary.query_timeout, absl::Seconds(10));
  EXPECT_FALSE(s.notary.serve_own_keys);
  EXPECT_EQ(s.notary.own_keys_validity, absl::Hours(24));
  EXPECT_EQ(s.notary.reload, absl::Seconds(60));
  EXPECT_EQ(s.tls.reload, absl::Seconds(60));
}

// What the file says is what is in force, in the units the keys name.
TEST(ConfigTest, EffectiveTakesTheFile) {
  absl::StatusOr<v1::Config> c = ParseConfig(R"(
      workers: 3
      grace_seconds: 2
      limits { max_call_ms: 1500 keyring_memory_mb: 8 max_pending_request_mb: 1 }
      store { kind: postgres postgres: "dbname=kv" lease_ms: 50000 lease_poll_ms: 20 }
      fetch {
        disabled: true order: notaries_first quorum: 2 budget_ms: 4000 well_known_port: 8443
        failure_backoff_seconds: 5 new_servers_burst: 7
        notaries { server_name: "n.example" verify_keys { key: "ed25519:a" value: "AAAA" } }
      }
      dns {
        hosts { host: "h.example" addresses: "10.0.0.1" addresses: "10.0.0.2" }
        timeout_ms: 300
      }
      outbound { no_default_denylist: true allowed: "10.0.0.0/8" }
      federation_tls { ca_mode: add min_version: tls1_3 ct_mode: enforce ct_min_logs: 3 }
      refresher { disabled: true min_interval_seconds: 60 }
      notary { own_keys_validity_hours: 2 requests_per_second: 3 reload_seconds: 5 }
  )", "kv.textproto");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(Validate(*c).ok()) << Validate(*c);
  const Settings s = Effective(*c);
  EXPECT_EQ(s.workers, 3);
  EXPECT_EQ(s.grace, absl::Seconds(2));
  EXPECT_EQ(s.limits.max_call, absl::Milliseconds(1500));
  EXPECT_EQ(s.limits.keyring_memory_bytes, size_t{8} << 20);
  EXPECT_EQ(s.limits.max_pending_request_bytes, size_t{1} << 20);
  EXPECT_EQ(s.store.kind, v1::Config::postgres);
  EXPECT_EQ(s.store.postgres, "dbname=kv");
  EXPECT_EQ(s.store.lease, absl::Seconds(50));
  EXPECT_EQ(s.store.lease_poll, absl::Milliseconds(20));
  EXPECT_FALSE(s.fetch.enabled);
  EXPECT_EQ(s.fetch.order, v1::Config::notaries_first);
  EXPECT_EQ(s.fetch.quorum, 2);
  EXPECT_EQ(s.fetch.budget, absl::Seconds(4));
  EXPECT_EQ(s.fetch.well_known_port, 8443);
  EXPECT_EQ(s.fetch.failure_backoff, absl::Seconds(5));
  EXPECT_EQ(s.fetch.failure_backoff_max, absl::Hours(1));  // not set: the default
  EXPECT_EQ(s.fetch.new_servers_burst, 7);
  ASSERT_EQ(s.fetch.notaries.size(), 1u);
  EXPECT_EQ(s.fetch.notaries[0].server_name, "n.example");
  EXPECT_EQ(s.fetch.notaries[0].verify_keys,
            (std::map<std::string, std::string>{{"ed25519:a", "AAAA"}}));
  EXPECT_EQ(s.dns.hosts.at("h.example"), (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(s.dns.timeout, absl::Milliseconds(300));
  EXPECT_FALSE(s.outbound.default_denylist);
  EXPECT_EQ(s.outbound.allowed, std::vector<std::string>{"10.0.0.0/8"});
  EXPECT_EQ(s.federation_tls.ca_mode, v1::Config::add);
  EXPECT_EQ(s.federation_tls.min_version, v1::Config::tls1_3);
  EXPECT_EQ(s.federation_tls.ct_mode, v1::Config::enforce);
  EXPECT_EQ(s.federation_tls.ct_min_logs, 3);
  EXPECT_FALSE(s.refresher.enabled);
  EXPECT_EQ(s.refresher.min_interval, absl::Minutes(1));
  EXPECT_EQ(s.notary.own_keys_validity, absl::Hours(2));
  EXPECT_EQ(s.notary.requests_per_second, 3);
  EXPECT_EQ(s.notary.reload, absl::Seconds(5));
}

// Enum settings are written bare, as config.proto's names: every name of
// every one of them parses to its value.
TEST(ConfigTest, EnumsTakeTheirNamesBare) {
  struct Case {
    const char* text;
    std::function<int(const v1::Config&)> field;
    const google::protobuf::EnumDescriptor* type;
  };
  const Case cases[] = {
      {"store { kind: %s }", [](const v1::Config& c) { return c.store().kind(); },
       v1::Config::StoreKind_descriptor()},
      {"fetch { order: %s }", [](const v1::Config& c) { return c.fetch().order(); },
       v1::Config::FetchOrder_descriptor()},
      {"federation_tls { ca_mode: %s }",
       [](const v1::Config& c) { return c.federation_tls().ca_mode(); },
       v1::Config::CaMode_descriptor()},
      {"federation_tls { min_version: %s }",
       [](const v1::Config& c) { return c.federation_tls().min_version(); },
       v1::Config::TlsVersion_descriptor()},
      {"federation_tls { ct_mode: %s }",
       [](const v1::Config& c) { return c.federation_tls().ct_mode(); },
       v1::Config::CtMode_descriptor()},
  };
  for (const Case& c : cases) {
    ASSERT_GE(c.type->value_count(), 3);  // UNSPECIFIED and at least two names
    for (int i = 0; i < c.type->value_count(); ++i) {
      const std::string text = absl::StrReplaceAll(c.text, {{"%s", c.type->value(i)->name()}});
      SCOPED_TRACE(text);
      absl::StatusOr<v1::Config> parsed = ParseConfig(text, "f");
      ASSERT_TRUE(parsed.ok()) << parsed.status();
      EXPECT_EQ(c.field(*parsed), c.type->value(i)->number());
      EXPECT_TRUE(Validate(*parsed).ok()) << Validate(*parsed);
    }
  }
  EXPECT_EQ(EnumNames(*v1::Config::StoreKind_descriptor()), "sqlite, postgres, memory");
}

// The form these settings had before they were enums, `kind: "postgres"`,
// is refused with the key, where it is, and how to write it; so is a name
// the setting does not take, quoted or not.
TEST(ConfigTest, QuotedEnumsSayHowToWriteThem) {
  struct Case {
    std::string text;
    std::vector<std::string> says;
  };
  const Case cases[] = {
      {"listen: \"127.0.0.1:1\"\nstore { kind: \"postgres\" postgres: \"dbname=kv\" }\n",
       {"config kv.textproto: line 2:15: store.kind: \"postgres\" is quoted; write the name "
        "bare, kind: postgres (one of sqlite, postgres, memory)"}},
      {"fetch { order: 'direct_only' }",
       {"line 1:16: fetch.order: 'direct_only' is quoted", "order: direct_only",
        "direct_first, notaries_first, direct_only"}},
      {"federation_tls {\n  ca_mode: \"replace\"\n}", {"line 2:12: federation_tls.ca_mode:"}},
      {"federation_tls < min_version: \"1.3\" >",
       {"federation_tls.min_version: \"1.3\" is written min_version: tls1_3 (one of tls1_2, "
        "tls1_3)"}},
      {"federation_tls { min_version: \"1.2\" }", {"is written min_version: tls1_2"}},
      {"fetch { order: \"y\" }", {"\"y\" is not one of"}},
      {"fetch { order: \"fastest\" }",
       {"line 1:16: fetch.order: \"fastest\" is not one of direct_first, notaries_first, "
        "direct_only (written bare, without quotes)"}},
      {"federation_tls { ct_mode: \"enforce\" }", {"federation_tls.ct_mode", "ct_mode: enforce"}},
      // A bare name it does not take.
      {"store { kind: postgresql }",
       {"line 1:15: store.kind: \"postgresql\" is not one of sqlite, postgres, memory"}},
      {"federation_tls { ct_mode: strict }",
       {"federation_tls.ct_mode: \"strict\" is not one of off, report, enforce"}},
      // Found after lists of messages and of strings, and after comments
      // that quote the old form.
      {"# store { kind: \"sqlite\" } was the old form\n"
       "fetch { notaries: [{ server_name: \"a\" }, { server_name: \"b\" }] order: \"x\" }",
       {"line 2:71: fetch.order: \"x\" is not one of"}},
      {"outbound { denied: [\"10.0.0.0/8\", \"192.168.0.0/16\"] }\n"
       "federation_tls: { whitelist: [\"*.onion\"] ct_mode: \"off\" }",
       {"line 2:51: federation_tls.ct_mode: \"off\" is quoted"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    absl::StatusOr<v1::Config> got = Load({"--config", "kv.textproto"}, {{"kv.textproto", c.text}});
    ASSERT_FALSE(got.ok());
    for (const std::string& says : c.says) {
      EXPECT_TRUE(absl::StrContains(got.status().message(), says)) << got.status();
    }
  }
  // A string elsewhere, even one that is an enum's name, is only a string.
  absl::StatusOr<v1::Config> fine = ParseConfig(
      "store { postgres: \"postgres\" }\nnotary { server_name: \"off\" }\n"
      "fetch { notaries { server_name: \"system\" } order: notaries_first }",
      "f");
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(fine->fetch().order(), v1::Config::notaries_first);
}

// proto3 enums take numbers the file format does not check; Validate does.
TEST(ConfigTest, EnumNumbersMustBeNames) {
  for (const char* text : {"store { kind: 2 }", "fetch { order: 3 }"}) {
    absl::StatusOr<v1::Config> c = ParseConfig(text, "f");
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(Validate(*c).ok()) << Validate(*c);
  }
  EXPECT_EQ(Effective(*ParseConfig("store { kind: 2 }", "f")).store.kind, v1::Config::postgres);
  const std::pair<const char*, const char*> bad[] = {
      {"store { kind: 9 }", "config: store.kind: 9 is not one of sqlite, postgres, memory"},
      {"fetch { order: -1 }", "config: fetch.order: -1 is not one of"},
      {"federation_tls { min_version: 13 }", "config: federation_tls.min_version: 13 is not"},
  };
  for (const auto& [text, says] : bad) {
    SCOPED_TRACE(text);
    absl::StatusOr<v1::Config> c = Load({"--config", "f"}, {{"f", text}});
    ASSERT_FALSE(c.ok());
    EXPECT_TRUE(absl::StrContains(c.status().message(), says)) << c.status();
  }
}

// config.proto documents each default once; these are the numbers the code
// applies (Effective of an empty config), found in the comment above each
// field's declaration in its message.
TEST(ConfigTest, ProtoCommentsGiveTheDefaultsInForce) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::ifstream in(absl::StrCat(srcdir != nullptr ? srcdir : ".",
                                "/keyverifier/protos/keyverifier/v1/config.proto"));
  ASSERT_TRUE(in) << "config.proto is not in the runfiles";
  const std::vector<std::string> lines =
      absl::StrSplit(std::string(std::istreambuf_iterator<char>(in), {}), '\n');
  // The comment lines right above `field`'s declaration in `message` (over
  // the fields declared with it, under one comment).
  const auto comment_of = [&](const std::string& message, const std::string& field) {
    const std::regex open("^\\s*message " + message + " \\{");
    const std::regex decl("^\\s*(repeated )?[\\w.]+ " + field + " = \\d+;");
    const std::regex any_decl("^\\s*(repeated )?[\\w.<>, ]+ \\w+ = \\d+;");
    size_t i = 0;
    while (i < lines.size() && !std::regex_search(lines[i], open)) ++i;
    while (i < lines.size() && !std::regex_search(lines[i], decl)) ++i;
    if (i == lines.size()) return std::string("(no field ") + message + "." + field + ")";
    while (i > 0 && std::regex_search(lines[i - 1], any_decl)) --i;
    std::string comment;
    while (i > 0 && absl::StartsWith(absl::StripLeadingAsciiWhitespace(lines[i - 1]), "//")) {
      comment = absl::StrCat(absl::StripLeadingAsciiWhitespace(lines[--i]).substr(2), comment);
    }
    return comment;
  };
  const Settings s = Effective(v1::Config());
  const auto ms = [](absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d)); };
  const auto sec = [](absl::Duration d) { return absl::StrCat(absl::ToInt64Seconds(d)); };
  const auto mib = [](size_t bytes) { return absl::StrCat(bytes >> 20); };
  const auto name = [](auto value, const google::protobuf::EnumDescriptor* type) {
    return type->FindValueByNumber(value)->name();
  };
  // message, field, what its comment says, with {} the value in force.
  const std::vector<std::tuple<std::string, std::string, std::string, std::string>> rows = {
      {"Config", "listen", "Default \"{}\"", s.listen},
      {"Config", "metrics_listen", "Default \"{}\"", s.metrics_listen},
      {"Config", "data_dir", "Default \"{}\"", s.data_dir},
      {"Config", "log_level", "\"{}\" (default)", s.log_level},
      {"Config", "grace_seconds", "Default {}.", sec(s.grace)},
      {"Limits", "max_events_per_batch", "Default {}.",
       absl::StrCat(s.limits.max_events_per_batch)},
      {"Limits", "max_event_bytes", "Default {},", absl::StrCat(s.limits.max_event_bytes)},
      {"Limits", "max_request_bytes", "Default {};", absl::StrCat(s.limits.max_request_bytes)},
      {"Limits", "max_call_ms", "Default {}.", ms(s.limits.max_call)},
      {"Limits", "keyring_memory_mb", "(default {})", mib(s.limits.keyring_memory_bytes)},
      {"Limits", "max_keys_per_response", "Default {}.",
       absl::StrCat(s.limits.max_keys_per_response)},
      {"Limits", "max_pending_request_mb", "(default {})",
       mib(s.limits.max_pending_request_bytes)},
      {"Store", "kind", "{} (default", name(s.store.kind, v1::Config::StoreKind_descriptor())},
      {"Store", "lease_ms", "lease_ms, default {};", ms(s.store.lease)},
      {"Store", "lease_poll_ms", "lease_poll_ms (default {})", ms(s.store.lease_poll)},
      {"Fetch", "order", "{} (default)", name(s.fetch.order, v1::Config::FetchOrder_descriptor())},
      {"Fetch", "quorum", "{} (default)", absl::StrCat(s.fetch.quorum)},
      {"Fetch", "connect_timeout_ms", "TCP connection (default {})", ms(s.fetch.connect_timeout)},
      {"Fetch", "tls_handshake_timeout_ms",
       "TLS handshake from the moment of connecting (default {};",
       ms(s.fetch.tls_handshake_timeout)},
      {"Fetch", "request_timeout_ms", "whole request (default {})", ms(s.fetch.request_timeout)},
      {"Fetch", "well_known_port", "Default {}.", absl::StrCat(s.fetch.well_known_port)},
      {"Fetch", "max_connections", "in all (default {})", absl::StrCat(s.fetch.max_connections)},
      {"Fetch", "max_connections_per_host", "one server name (default {};",
       absl::StrCat(s.fetch.max_connections_per_host)},
      {"Fetch", "notary_batch_size", "Default {}.", absl::StrCat(s.fetch.notary_batch_size)},
      {"Fetch", "budget_ms", "Default {}.", ms(s.fetch.budget)},
      {"Fetch", "well_known_timeout_ms", "Default {}.", ms(s.fetch.well_known_timeout)},
      {"Fetch", "max_endpoints", "Default {}.", absl::StrCat(s.fetch.max_endpoints)},
      {"Fetch", "failure_backoff_seconds", "default {} s", sec(s.fetch.failure_backoff)},
      {"Fetch", "failure_backoff_max_seconds", "up to {} s", sec(s.fetch.failure_backoff_max)},
      {"Fetch", "miss_backoff_seconds", "default {} s", sec(s.fetch.miss_backoff)},
      {"Fetch", "miss_backoff_max_seconds", "up to {} s", sec(s.fetch.miss_backoff_max)},
      {"Fetch", "new_servers_per_second", "per second (default {})",
       absl::StrCat(s.fetch.new_servers_per_second)},
      {"Fetch", "new_servers_burst", "burst (default {})", absl::StrCat(s.fetch.new_servers_burst)},
      {"Dns", "timeout_ms", "default {};", ms(s.dns.timeout)},
      {"Dns", "max_in_flight", "(default {})", absl::StrCat(s.dns.max_in_flight)},
      {"FederationTls", "ca_mode", "{} (default",
       name(s.federation_tls.ca_mode, v1::Config::CaMode_descriptor())},
      {"FederationTls", "min_version", "{} (default)",
       name(s.federation_tls.min_version, v1::Config::TlsVersion_descriptor())},
      {"FederationTls", "ct_mode", "{} (default)",
       name(s.federation_tls.ct_mode, v1::Config::CtMode_descriptor())},
      {"FederationTls", "ct_min_logs", "Default {}.", absl::StrCat(s.federation_tls.ct_min_logs)},
      {"Refresher", "interval_seconds", "Default {}.", sec(s.refresher.interval)},
      {"Refresher", "concurrency", "Default {}.", absl::StrCat(s.refresher.concurrency)},
      {"Refresher", "min_interval_seconds", "Default {}.", sec(s.refresher.min_interval)},
      {"Notary", "max_servers_per_query", "POST (default {})",
       absl::StrCat(s.notary.max_servers_per_query)},
      {"Notary", "max_key_ids_per_server", "per server (default {})",
       absl::StrCat(s.notary.max_key_ids_per_server)},
      {"Notary", "max_request_bytes", "(default {})", absl::StrCat(s.notary.max_request_bytes)},
      {"Notary", "requests_per_second", "client address (default {})",
       absl::StrCat(s.notary.requests_per_second)},
      {"Notary", "burst", "burst allowed (default {})", absl::StrCat(s.notary.burst)},
      {"Notary", "query_timeout_ms", "(default {})", ms(s.notary.query_timeout)},
      {"Notary", "own_keys_validity_hours", "(default {})",
       absl::StrCat(absl::ToInt64Hours(s.notary.own_keys_validity))},
  };
  for (const auto& [message, field, says, value] : rows) {
    const std::string want = absl::StrReplaceAll(says, {{"{}", value}});
    const std::string comment = comment_of(message, field);  // lines joined by a space
    EXPECT_TRUE(absl::StrContains(comment, want))
        << message << "." << field << ": expected \"" << want << "\" in: " << comment;
  }
}

TEST(ConfigTest, AShortBudgetShortensTheWellKnownTimeout) {
  v1::Config c;
  c.mutable_fetch()->set_budget_ms(8000);
  EXPECT_EQ(config::Effective(c).fetch.well_known_timeout, absl::Seconds(4));
  c.mutable_fetch()->set_well_known_timeout_ms(6000);
  EXPECT_EQ(config::Effective(c).fetch.well_known_timeout, absl::Seconds(6));
  EXPECT_EQ(config::Effective(v1::Config()).fetch.well_known_timeout, absl::Seconds(10));
}

TEST(ConfigTest, FlagsWinOverTheFile) {
  absl::StatusOr<v1::Config> c =
      Load({"--config", "kv.textproto", "--listen=127.0.0.1:9999", "--workers", "3"},
           {{"kv.textproto", "listen: \"127.0.0.1:1111\"\nlog_level: \"debug\"\n"}});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listen(), "127.0.0.1:9999");  // the flag
  EXPECT_EQ(c->log_level(), "debug");        // the file
  EXPECT_EQ(c->workers(), 3u);
  EXPECT_EQ(c->metrics_listen(), "");                        // not given:
  EXPECT_EQ(Effective(*c).metrics_listen, "127.0.0.1:9470");  // the default
}

TEST(ConfigTest, ErrorsNameWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string file;
    const char* says;
  };
  const Case cases[] = {
      {{"--config", "f"}, "frobnicate: 1\n", "frobnicate"},
      {{"--config", "f"}, "\nlisten: 7\n", "line 2"},
      {{"--config", "f"}, "log_level: \"loud\"\n", "log_level"},
      {{"--config", "f"}, "listen: \"no-port\"\n", "listen"},
      {{"--config", "f"}, "workers: 5000\n", "workers"},
      {{"--config", "f"}, "limits { max_event_bytes: 100 max_request_bytes: 10 }\n",
       "limits.max_event_bytes"},
      {{"--config", "f"}, "tls { cert_file: \"a.pem\" }\n", "tls.key_file"},
      {{"--config", "f"}, "tls { allowed_client_names: \"x\" }\n", "tls.allowed_client_names"},
      {{"--config", "missing"}, "", "missing"},
      {{"--no_such_flag", "1"}, "", "no_such_flag"},
      {{"--workers", "many"}, "", "workers"},
      {{"--listen="}, "", "--listen needs a value"},
      {{"--data_dir", ""}, "", "--data_dir needs a value"},
      {{"--config", "f"}, "fetch { well_known_port: 70000 }", "fetch.well_known_port: 70000"},
      {{"--config", "f"}, "fetch { well_known_timeout_ms: 8000 budget_ms: 8000 }",
       "fetch.well_known_timeout_ms: 8000 is not less than fetch.budget_ms (8000)"},
      {{"--config", "f"}, "fetch { well_known_timeout_ms: 30000 }",
       "fetch.well_known_timeout_ms: 30000 is not less than fetch.budget_ms (30000)"},
      {{"--config", "f"}, "notary_listen: \"127.0.0.1:0\" notary { server_name: \"n.example\" }",
       "notary.signing_key_file: required with notary_listen"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.says);
    absl::StatusOr<v1::Config> got = Load(c.args, {{"f", c.file}});
    ASSERT_FALSE(got.ok());
    EXPECT_TRUE(absl::StrContains(got.status().message(), c.says)) << got.status();
  }
}

TEST(ConfigTest, UsageNamesEveryFlag) {
  const std::string usage = FlagsUsage();
  for (const char* flag : {"--config", "--listen", "--metrics_listen", "--data_dir",
                           "--log_level", "--workers", "--grace_seconds", "--trusted_keys"}) {
    EXPECT_TRUE(absl::StrContains(usage, flag)) << flag;
  }
}

}  // namespace
}  // namespace keyverifier::config
