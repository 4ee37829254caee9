// The offline subcommands, run through the same entry point as the binary with
// an in-memory file system and a fixed clock.
#include "client/cli/offline.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace keyverifier::cli {
namespace {

using ::testing::HasSubstr;

// The signed event from the Matrix spec appendices ("Event Signing", second
// example), signed by server "domain" with key ed25519:1.
constexpr char kSpecEvent[] = R"({
  "content": {"body": "Here is the message content"},
  "event_id": "$0:domain",
  "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
  "origin": "domain",
  "origin_server_ts": 1000000,
  "type": "m.room.message",
  "room_id": "!r:domain",
  "sender": "@u:domain",
  "signatures": {"domain": {"ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"}},
  "unsigned": {"age_ts": 1000000}
})";
// The public key of the spec's test seed.
constexpr char kSpecKey[] = "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI";
// The spec's signed {"one":1,"two":"Two"}.
constexpr char kSpecSignedJson[] = R"({"one": 1, "two": "Two", "signatures": {"domain": {"ed25519:1": "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"}}})";

class OfflineCliTest : public ::testing::Test {
 protected:
  OfflineCliTest() {
    files_["keys.json"] = std::string(R"({"domain": {"ed25519:1": {"key": ")") +
                          kSpecKey + R"(", "valid_until_ts": 9000000000000}}})";
    files_["event.json"] = kSpecEvent;
    env_.read_file = [this](const std::string& path) -> absl::StatusOr<std::string> {
      auto it = files_.find(path);
      if (it == files_.end()) return absl::NotFoundError("cannot open " + path);
      return it->second;
    };
    env_.now_ms = [] { return int64_t{2000000}; };
  }

  CommandResult Run(const std::string& cmd, std::vector<std::string> args) {
    return RunOfflineCommand(cmd, args, env_);
  }

  std::map<std::string, std::string> files_;
  Environment env_;
};

TEST_F(OfflineCliTest, CanonicalJsonPrintsWithoutNewline) {
  files_["-"] = R"({"b": "2", "a": "1", "c": {"日": 1, "a": -0, "e": 1e10}})";
  CommandResult r = Run("canonical-json", {});
  EXPECT_EQ(r.exit_code, kExitValid);
  EXPECT_EQ(r.out, R"({"a":"1","b":"2","c":{"a":0,"e":10000000000,"日":1}})");
}

TEST_F(OfflineCliTest, CanonicalJsonUsesTheRoomVersionsNumberRules) {
  files_["in.json"] = R"({"x": 1.5})";
  EXPECT_EQ(Run("canonical-json", {"--room-version", "5", "in.json"}).out,
            R"({"x":1.5})");
  CommandResult strict = Run("canonical-json", {"--room-version", "6", "in.json"});
  EXPECT_EQ(strict.exit_code, kExitUnusable);
  EXPECT_THAT(strict.err, HasSubstr("$.x"));
}

TEST_F(OfflineCliTest, CanonicalJsonRejectsBadJsonWithReason) {
  files_["bad.json"] = R"({"a": 1, "a": 2})";
  CommandResult r = Run("canonical-json", {"bad.json"});
  EXPECT_EQ(r.exit_code, kExitUnusable);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("duplicate key \"a\""));
}

TEST_F(OfflineCliTest, RedactKeepsOnlyWhatTheRoomVersionAllows) {
  CommandResult v1 = Run("redact", {"--room-version", "1", "event.json"});
  EXPECT_EQ(v1.exit_code, kExitValid);
  EXPECT_THAT(v1.out, HasSubstr(R"("content":{})"));
  EXPECT_THAT(v1.out, HasSubstr(R"("origin":"domain")"));
  EXPECT_THAT(v1.out, ::testing::Not(HasSubstr("unsigned")));
  CommandResult v11 = Run("redact", {"--room-version=11", "event.json"});
  EXPECT_THAT(v11.out, ::testing::Not(HasSubstr(R"("origin")")));
  EXPECT_EQ(Run("redact", {"event.json"}).exit_code, kExitUnusable);
}

TEST_F(OfflineCliTest, VerifyEventValid) {
  CommandResult r =
      Run("verify-event", {"--room-version", "1", "--keys", "keys.json", "event.json"});
  EXPECT_EQ(r.exit_code, kExitValid) << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("verdict":"valid")"));
  EXPECT_THAT(r.out, HasSubstr(R"("reason":"ok")"));
  EXPECT_THAT(r.out, HasSubstr(R"("event_id":"$0:domain")"));
  EXPECT_THAT(r.out, HasSubstr(R"("checked":[{"key_ids":["ed25519:1"],"server":"domain"}])"));
}

TEST_F(OfflineCliTest, VerifyEventComputesEventIdsForV3AndV4) {
  CommandResult v3 =
      Run("verify-event", {"--room-version", "3", "--keys", "keys.json", "event.json"});
  CommandResult v4 =
      Run("verify-event", {"--room-version", "4", "--keys", "keys.json", "event.json"});
  EXPECT_EQ(v3.exit_code, kExitValid);
  EXPECT_THAT(v3.out, HasSubstr(R"("event_id":"$oFAil2fHTGY66j9PIsC3hnc+/6r2SQGxCzd1/FUgtOE")"));
  EXPECT_THAT(v4.out, HasSubstr(R"("event_id":"$oFAil2fHTGY66j9PIsC3hnc-_6r2SQGxCzd1_FUgtOE")"));
}

TEST_F(OfflineCliTest, VerifyEventChangedContentIsValidButRedacted) {
  std::string changed = kSpecEvent;
  changed.replace(changed.find("Here is"), 7, "Here was");
  files_["changed.json"] = changed;
  CommandResult r =
      Run("verify-event", {"--room-version", "1", "--keys", "keys.json", "changed.json"});
  EXPECT_EQ(r.exit_code, kExitInvalid);
  EXPECT_THAT(r.out, HasSubstr(R"("verdict":"valid_but_redacted")"));
  EXPECT_THAT(r.out, HasSubstr(R"("reason":"content_hash_mismatch")"));
  EXPECT_THAT(r.out, HasSubstr(R"("redacted_event":{"content":{})"));
}

TEST_F(OfflineCliTest, VerifyEventWithWrongKeyIsInvalid) {
  files_["other.json"] =
      R"({"domain": {"ed25519:1": {"key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "valid_until_ts": 9000000000000}}})";
  CommandResult r =
      Run("verify-event", {"--room-version", "1", "--keys", "other.json", "event.json"});
  EXPECT_EQ(r.exit_code, kExitInvalid);
  EXPECT_THAT(r.out, HasSubstr(R"("verdict":"invalid")"));
  EXPECT_THAT(r.out, HasSubstr(R"("reason":"bad_signature")"));
  EXPECT_THAT(r.out, HasSubstr("ed25519:1"));
}

TEST_F(OfflineCliTest, VerifyEventHonoursKeyValidityFromRoomVersion5) {
  files_["short.json"] = std::string(R"({"domain": {"ed25519:1": {"key": ")") +
                         kSpecKey + R"(", "valid_until_ts": 999999}}})";
  CommandResult v4 =
      Run("verify-event", {"--room-version", "4", "--keys", "short.json", "event.json"});
  CommandResult v5 =
      Run("verify-event", {"--room-version", "5", "--keys", "short.json", "event.json"});
  EXPECT_EQ(v4.exit_code, kExitValid);
  EXPECT_EQ(v5.exit_code, kExitInvalid);
  EXPECT_THAT(v5.out, HasSubstr(R"("reason":"key_not_valid")"));
}

TEST_F(OfflineCliTest, VerifyEventUnusableInput) {
  files_["notjson"] = "{";
  EXPECT_EQ(Run("verify-event", {"--room-version", "1", "--keys", "keys.json",
                                 "notjson"}).exit_code,
            kExitUnusable);
  CommandResult no_keys = Run("verify-event", {"--room-version", "1", "event.json"});
  EXPECT_EQ(no_keys.exit_code, kExitUnusable);
  EXPECT_THAT(no_keys.err, HasSubstr("--keys"));
  CommandResult bad_version =
      Run("verify-event", {"--room-version", "99", "--keys", "keys.json", "event.json"});
  EXPECT_THAT(bad_version.err, HasSubstr("unsupported room version \"99\""));
  CommandResult missing = Run("verify-event",
                              {"--room-version", "1", "--keys", "nope.json", "event.json"});
  EXPECT_THAT(missing.err, HasSubstr("cannot open nope.json"));
  CommandResult unknown_flag = Run("verify-event", {"--bogus", "1"});
  EXPECT_THAT(unknown_flag.err, HasSubstr("unknown flag --bogus"));
}

TEST_F(OfflineCliTest, VerifyJsonSpecVector) {
  files_["signed.json"] = kSpecSignedJson;
  CommandResult ok = Run("verify-json", {"--server", "domain", "--keys", "keys.json",
                                         "signed.json"});
  EXPECT_EQ(ok.exit_code, kExitValid) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr(R"("verdict":"valid")"));
  std::string tampered = kSpecSignedJson;
  tampered.replace(tampered.find("\"Two\""), 5, "\"Six\"");
  files_["tampered.json"] = tampered;
  CommandResult bad = Run("verify-json", {"--server", "domain", "--keys", "keys.json",
                                          "tampered.json"});
  EXPECT_EQ(bad.exit_code, kExitInvalid);
  EXPECT_THAT(bad.out, HasSubstr(R"("reason":"bad_signature")"));
  CommandResult other = Run("verify-json", {"--server", "elsewhere", "--keys",
                                            "keys.json", "signed.json"});
  EXPECT_EQ(other.exit_code, kExitInvalid);
  EXPECT_THAT(other.out, HasSubstr(R"("reason":"missing_signature")"));
}

TEST_F(OfflineCliTest, KeysFileAsKeyResponsesIsValidatedFirst) {
  // An unsigned key response must be refused as a source of trust.
  files_["responses.json"] = std::string(R"([{"server_name": "domain", "valid_until_ts": 9000000000000, "verify_keys": {"ed25519:1": {"key": ")") +
                             kSpecKey + R"("}}}])";
  CommandResult r = Run("verify-event", {"--room-version", "1", "--keys",
                                         "responses.json", "event.json"});
  EXPECT_EQ(r.exit_code, kExitUnusable);
  EXPECT_THAT(r.err, HasSubstr("entry 0"));
  EXPECT_THAT(r.err, HasSubstr("ed25519:1"));
}

TEST_F(OfflineCliTest, CheckServerKeysReportsProblems) {
  files_["unsigned.json"] = std::string(R"({"server_name": "domain", "valid_until_ts": 9000000000000, "verify_keys": {"ed25519:1": {"key": ")") +
                            kSpecKey + R"("}}})";
  CommandResult r = Run("check-server-keys", {"unsigned.json"});
  EXPECT_EQ(r.exit_code, kExitInvalid);
  EXPECT_THAT(r.out, HasSubstr(R"("verdict":"invalid")"));
  EXPECT_THAT(r.out, HasSubstr("did not sign"));
  files_["garbage"] = "not json";
  EXPECT_EQ(Run("check-server-keys", {"garbage"}).exit_code, kExitUnusable);
}

TEST_F(OfflineCliTest, UnknownSubcommand) {
  EXPECT_FALSE(IsOfflineCommand("frobnicate"));
  EXPECT_EQ(Run("frobnicate", {}).exit_code, kExitUnusable);
}

}  // namespace
}  // namespace keyverifier::cli
