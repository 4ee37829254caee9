// keyverifier_cli: offline checks with the signing core, and calls to a
// running keyverifier service. See `keyverifier_cli help`.
#include <unistd.h>

#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cli/offline.h"
#include "client/cli/remote.h"
#include "service/io/file.h"

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  return keyverifier::io::ReadFileFromDisk(path);
}

void Usage(std::ostream& out) {
  out << "usage: keyverifier_cli <subcommand> [flags] [FILE]\n"
      << "offline subcommands (FILE absent or '-' reads standard input):\n"
      << keyverifier::cli::OfflineUsage()
      << "remote subcommands (call a running keyverifier):\n"
      << keyverifier::cli::RemoteUsage()
      << "exit codes: 0 valid, 1 invalid or valid_but_redacted, 2 unusable input\n";
}

}  // namespace

int main(int argc, char** argv) {
  // Run from `bazel run`, relative paths mean the caller's directory.
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(wd) != 0) std::cerr << "cannot enter " << wd << "\n";
  }
  if (argc < 2) {
    Usage(std::cerr);
    return keyverifier::cli::kExitUnusable;
  }
  std::string command = argv[1];
  if (command == "help" || command == "--help" || command == "-h") {
    Usage(std::cout);
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  keyverifier::cli::Environment env;
  env.read_file = ReadFile;
  env.now_ms = [] { return absl::ToUnixMillis(absl::Now()); };
  keyverifier::cli::CommandResult r;
  if (keyverifier::cli::WantsRemote(command, args)) {
    r = keyverifier::cli::RunRemoteCommand(command, args, env);
  } else if (keyverifier::cli::IsOfflineCommand(command)) {
    r = keyverifier::cli::RunOfflineCommand(command, args, env);
  } else {
    std::cerr << "unknown subcommand \"" << command << "\"\n";
    Usage(std::cerr);
    return keyverifier::cli::kExitUnusable;
  }
  std::cout << r.out;
  std::cerr << r.err;
  return r.exit_code;
}
