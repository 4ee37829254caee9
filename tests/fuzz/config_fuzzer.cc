// The configuration file (service/config): protobuf text format, the enum
// settings written bare, then Validate and the settings in force.
//
// Invariants:
// - Parsing is deterministic; a refused file is InvalidArgumentError naming
//   the file ("config <source>: ...").
// - What parses prints back (text format) to a file that parses to the same
//   configuration.
// - What Validate refuses is InvalidArgumentError naming the key
//   ("config: KEY: ..."); what it accepts has settings in force with no
//   enum left unspecified, positive timeouts and non-empty addresses.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/text_format.h"
#include "keyverifier/v1/config.pb.h"
#include "service/config/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keyverifier;
  if (size > 64 * 1024) return 0;  // a configuration file, not a bulk input
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  const absl::StatusOr<v1::Config> parsed = config::ParseConfig(text, "fuzz.textproto");
  const absl::StatusOr<v1::Config> again = config::ParseConfig(text, "fuzz.textproto");
  FUZZ_CHECK_EQ(parsed.status().ToString(), again.status().ToString());
  if (!parsed.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(parsed.status()));
    FUZZ_CHECK_MSG(absl::StartsWith(parsed.status().message(), "config fuzz.textproto"),
                   parsed.status().ToString());
    return 0;
  }
  FUZZ_CHECK_EQ(parsed->SerializeAsString(), again->SerializeAsString());

  std::string printed;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*parsed, &printed));
  const absl::StatusOr<v1::Config> reparsed = config::ParseConfig(printed, "printed");
  FUZZ_CHECK_MSG(reparsed.ok(), reparsed.status().ToString() + "\nprinted:\n" + printed);
  FUZZ_CHECK_EQ(reparsed->SerializeAsString(), parsed->SerializeAsString());

  const absl::Status valid = config::Validate(*parsed);
  if (!valid.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(valid));
    FUZZ_CHECK_MSG(absl::StartsWith(valid.message(), "config: "), valid.ToString());
    return 0;
  }
  const config::Settings s = config::Effective(*parsed);
  FUZZ_CHECK(!s.listen.empty() && !s.metrics_listen.empty() && !s.data_dir.empty());
  FUZZ_CHECK(s.store.kind != v1::Config::STORE_KIND_UNSPECIFIED);
  FUZZ_CHECK(s.fetch.order != v1::Config::FETCH_ORDER_UNSPECIFIED);
  FUZZ_CHECK(s.fetch.connect_timeout > absl::ZeroDuration());
  FUZZ_CHECK(s.store.lease > absl::ZeroDuration() && s.store.lease_poll > absl::ZeroDuration());
  FUZZ_CHECK(s.store.connections > 0);
  return 0;
}
