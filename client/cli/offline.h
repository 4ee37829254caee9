// The offline subcommands of keyverifier_cli: the signing core run locally on
// files, for operators who need to see why something fails.
//
//   canonical-json [--room-version V] [FILE]
//   redact --room-version V [FILE]
//   verify-json --server NAME --keys KEYS.json [FILE]
//   verify-event --room-version V --keys KEYS.json [--now MS] [FILE]
//   check-server-keys [--server NAME] [--now MS] [FILE]
//   check-chain --name NAME --chain CHAIN.pem [--roots ROOTS.pem] [--at RFC3339-TIME]
//
// FILE absent or "-" means standard input. check-chain runs the federation
// certificate policy; without --roots it reads the system CA bundle. Verifying subcommands print one
// line of JSON with "verdict" and "reason"; exit codes: 0 valid, 1 invalid or
// valid_but_redacted, 2 unusable input (reason on stderr).
//
// File access and the clock are injected, so these run in tests as they do in
// the binary.
#ifndef KEYVERIFIER_CLIENT_CLI_OFFLINE_H_
#define KEYVERIFIER_CLIENT_CLI_OFFLINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace keyverifier::cli {

inline constexpr int kExitValid = 0;
inline constexpr int kExitInvalid = 1;
inline constexpr int kExitUnusable = 2;

struct CommandResult {
  int exit_code = kExitUnusable;
  std::string out;  // standard output
  std::string err;  // standard error
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // "--name value" or "--name=value"
};

// Splits argv (after the subcommand) into flags and positional arguments;
// every flag takes a value. Fails on an unknown flag.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const std::vector<std::string>& known_flags);

struct Environment {
  // Reads a file; "-" means standard input.
  std::function<absl::StatusOr<std::string>(const std::string& path)> read_file;
  // Milliseconds since the Unix epoch.
  std::function<int64_t()> now_ms;
};

// True if `name` is one of the offline subcommands.
bool IsOfflineCommand(absl::string_view name);

// Usage text for the offline subcommands.
std::string OfflineUsage();

CommandResult RunOfflineCommand(absl::string_view name,
                                const std::vector<std::string>& argv,
                                const Environment& env);

}  // namespace keyverifier::cli

#endif  // KEYVERIFIER_CLIENT_CLI_OFFLINE_H_
