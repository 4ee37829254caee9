// Loading the service configuration: defaults, then the file (protobuf text
// format, see protos/keyverifier/v1/config.proto), then command-line flags.
// Validated once at start; errors name the file, line and the bad key.
#ifndef KEYVERIFIER_SERVICE_CONFIG_CONFIG_H_
#define KEYVERIFIER_SERVICE_CONFIG_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "keyverifier/v1/config.pb.h"

namespace keyverifier::config {

// The defaults documented in config.proto, filled in.
v1::Config Defaults();

// Parses text-format `text` (named `source` in errors) over the defaults.
absl::StatusOr<v1::Config> ParseConfig(absl::string_view text,
                                       absl::string_view source);

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
