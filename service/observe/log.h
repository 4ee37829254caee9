// Structured logs: one JSON object per line on stderr, with a level filter.
// Callers pass short messages and fields; never whole events or secrets at
// info level. Thread-safe (one line is written with one call).
#ifndef KEYVERIFIER_SERVICE_OBSERVE_LOG_H_
#define KEYVERIFIER_SERVICE_OBSERVE_LOG_H_

#include <initializer_list>
#include <ostream>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "service/clock/clock.h"

namespace keyverifier::observe {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// "debug", "info", "warning", "error".
absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);

class Logger {
 public:
  using Fields = std::initializer_list<std::pair<absl::string_view, absl::string_view>>;

  Logger(LogLevel min_level, std::ostream& out, const Clock& clock)
      : min_level_(min_level), out_(out), clock_(clock) {}

  void Log(LogLevel level, absl::string_view msg, Fields fields = {});
  void Info(absl::string_view msg, Fields fields = {}) { Log(LogLevel::kInfo, msg, fields); }
  void Error(absl::string_view msg, Fields fields = {}) { Log(LogLevel::kError, msg, fields); }

 private:
  const LogLevel min_level_;
  absl::Mutex mu_;
  std::ostream& out_ ABSL_GUARDED_BY(mu_);
  const Clock& clock_;
};

}  // namespace keyverifier::observe

#endif  // KEYVERIFIER_SERVICE_OBSERVE_LOG_H_
