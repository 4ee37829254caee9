// The observability pieces on their own: the logger's JSON lines, the
// logging observer (forwards every event, warns on those an operator must
// see), and the Prometheus metrics each event moves.
#include <algorithm>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "service/config/config.h"
#include "service/observe/log.h"
#include "service/observe/logging_observer.h"
#include "service/observe/metrics.h"
#include "tests/fakes/fake_clock.h"

namespace keyverifier::observe {
namespace {

class LoggingObserverTest : public ::testing::Test {
 protected:
  LoggingObserverTest()
      : clock_(absl::FromUnixMillis(1700000000000)),
        log_(LogLevel::kInfo, out_, clock_),
        metrics_(registry_, "test"),
        observer_(metrics_, log_) {}

  std::string Scrape() {
    return prometheus::TextSerializer().Serialize(registry_.Collect());
  }

  testing::FakeClock clock_;
  std::ostringstream out_;
  Logger log_;
  prometheus::Registry registry_;
  Metrics metrics_;
  LoggingObserver observer_;
};

TEST_F(LoggingObserverTest, LogLinesAreJsonWithLevelMessageAndFields) {
  log_.Log(LogLevel::kWarning, "something \"quoted\"", {{"server", "a.example"}});
  log_.Log(LogLevel::kDebug, "below the level");
  const std::string line = out_.str();
  EXPECT_TRUE(absl::StrContains(line, "\"level\":\"warning\"")) << line;
  EXPECT_TRUE(absl::StrContains(line, "\"msg\":\"something \\\"quoted\\\"\"")) << line;
  EXPECT_TRUE(absl::StrContains(line, "\"server\":\"a.example\"")) << line;
  EXPECT_TRUE(absl::StrContains(line, "\"ts_ms\":1700000000000")) << line;
  EXPECT_FALSE(absl::StrContains(line, "below the level"));
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
}

// main.cc makes its logger from the configured log_level: every level the
// configuration accepts is one the logger knows, and none other is.
TEST(LogLevelTest, TheConfigTakesExactlyTheLoggersLevels) {
  for (const char* name : {"debug", "info", "warning", "error", "", "loud", "INFO", "warn"}) {
    SCOPED_TRACE(name);
    v1::Config c;
    c.set_log_level(name);
    const bool config_takes_it = config::Validate(c).ok();
    const absl::StatusOr<LogLevel> level = ParseLogLevel(config::Effective(c).log_level);
    EXPECT_EQ(config_takes_it, level.ok());
  }
  EXPECT_EQ(*ParseLogLevel(config::Effective(v1::Config()).log_level), LogLevel::kInfo);
}

TEST_F(LoggingObserverTest, TheLevelFiltersLines) {
  std::ostringstream out;
  Logger log(*ParseLogLevel("warning"), out, clock_);
  log.Info("not shown");
  log.Log(LogLevel::kWarning, "shown warning");
  log.Error("shown error");
  EXPECT_FALSE(absl::StrContains(out.str(), "not shown")) << out.str();
  EXPECT_TRUE(absl::StrContains(out.str(), "\"level\":\"warning\"")) << out.str();
  EXPECT_TRUE(absl::StrContains(out.str(), "\"level\":\"error\"")) << out.str();
}

// Each event an operator must act on is logged as a warning and counted.
TEST_F(LoggingObserverTest, OperatorEventsAreLoggedAndCounted) {
  observer_.OnKeyVanished("a.example", "ed25519:x");
  observer_.OnKeyConflict("b.example", "ed25519:y", "refused");
  observer_.OnKeyConflict("b.example", "ed25519:y", "rebound");
  observer_.OnKeyDisagreement("c.example");
  observer_.OnCertificateFallback("d.example");
  observer_.OnErrorDetail("0123456789abcdef", "keys of e.example: via 10.0.0.1: refused");
  observer_.OnKeyringMemory(3, 4096);
  const std::string log = out_.str();
  for (const char* field : {"\"key_id\":\"ed25519:x\"", "\"outcome\":\"refused\"",
                            "\"outcome\":\"rebound\"", "\"server\":\"c.example\"",
                            "\"name\":\"d.example\"", "\"error_id\":\"0123456789abcdef\"",
                            "via 10.0.0.1"}) {
    EXPECT_TRUE(absl::StrContains(log, field)) << field << "\n" << log;
  }
  const std::string scrape = Scrape();
  for (const char* sample : {"keyverifier_keys_vanished_total 1",
                             "keyverifier_key_conflicts_total{outcome=\"refused\"} 1",
                             "keyverifier_key_conflicts_total{outcome=\"rebound\"} 1",
                             "keyverifier_key_disagreements_total 1",
                             "keyverifier_tls_fingerprint_fallbacks_total 1",
                             "keyverifier_keyring_servers 3",
                             "keyverifier_keyring_memory_bytes 4096"}) {
    EXPECT_TRUE(absl::StrContains(scrape, sample)) << sample;
  }
}

TEST_F(LoggingObserverTest, RpcsAndVerdictsAreCountedNotLogged) {
  observer_.OnRpc("/keyverifier.v1.KeyVerifier/VerifyServerKeys", "OK", absl::Milliseconds(2));
  observer_.OnVerdict("valid", "OK");
  observer_.OnPeerCertificateVerdict("a.example", true);
  observer_.OnPeerCertificateVerdict("b.example", false);
  observer_.OnPeerCertificateVerdict("c.example", false);
  observer_.OnCallRefused("queue_full");
  EXPECT_EQ(out_.str(), "");
  const std::string scrape = Scrape();
  EXPECT_TRUE(absl::StrContains(
      scrape, "keyverifier_rpcs_total{code=\"OK\",method=\"/keyverifier.v1.KeyVerifier/"
              "VerifyServerKeys\"} 1"))
      << scrape;
  EXPECT_TRUE(absl::StrContains(scrape, "keyverifier_verdicts_total{outcome=\"valid\",reason=\"OK\"} 1"))
      << scrape;
  EXPECT_TRUE(absl::StrContains(scrape, "keyverifier_build_info{version=\"test\"} 1")) << scrape;
  for (const char* sample : {"keyverifier_tls_peer_verdicts_total{outcome=\"valid\"} 1",
                             "keyverifier_tls_peer_verdicts_total{outcome=\"invalid\"} 2",
                             "keyverifier_calls_refused_total{reason=\"queue_full\"} 1",
                             "keyverifier_calls_refused_total{reason=\"pending_bytes\"} 0"}) {
    EXPECT_TRUE(absl::StrContains(scrape, sample)) << sample << "\n" << scrape;
  }
}

}  // namespace
}  // namespace keyverifier::observe
