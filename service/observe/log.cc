#include "service/observe/log.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "service/core/canonical_json.h"
#include "service/core/json_value.h"

namespace keyverifier::observe {

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warning") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(absl::StrCat(
      "log level \"", name, "\" is not one of debug, info, warning, error"));
}

void Logger::Log(LogLevel level, absl::string_view msg, Fields fields) {
  if (level < min_level_) return;
  static constexpr absl::string_view kNames[] = {"debug", "info", "warning", "error"};
  core::Value line = core::Value::Object();
  line.Set("ts_ms", core::Value::Integer(clock_.NowMs()));
  line.Set("level", core::Value::String(std::string(kNames[static_cast<int>(level)])));
  line.Set("msg", core::Value::String(std::string(msg)));
  for (const auto& [key, value] : fields) {
    line.Set(std::string(key), core::Value::String(std::string(value)));
  }
  std::string text = core::ToJson(line);
  text.push_back('\n');
  absl::MutexLock lock(&mu_);
  out_ << text << std::flush;
}

}  // namespace keyverifier::observe
