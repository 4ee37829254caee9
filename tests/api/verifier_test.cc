// The Verifier on its own (no gRPC): a batch's lookups answered one server
// at a time by a scripted keyring, its signature checks handed to a queue
// the test runs by hand.
#include "service/api/verifier.h"

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/event_verifier.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/room_version.h"
#include "tests/fakes/fake_clock.h"
#include "tests/testing/server_name.h"

namespace keyverifier::api {
namespace {

using ::keyverifier::testing::Name;

constexpr int64_t kNowMs = 1700000000000;
constexpr char kKeyId[] = "ed25519:k1";

// Holds every lookup until the test answers its server.
class ScriptedKeyRing : public keyring::KeyRing {
 public:
  void GetKeys(const keyring::KeyQuery& query, absl::Time,
               async::Callback<keyring::KeyResult> done) override {
    held_[query.server_name.str()].push_back(std::move(done));
  }
  std::optional<keyring::KeyResult> TryGetKeysFromMemory(const keyring::KeyQuery& q) override {
    auto it = memory_.find(q.server_name.str());
    if (it == memory_.end()) return std::nullopt;
    return it->second;
  }
  void Answer(const std::string& server, absl::StatusOr<keyring::KeyResult> r) {
    std::vector<async::Callback<keyring::KeyResult>> waiting = std::move(held_[server]);
    held_.erase(server);
    for (auto& done : waiting) done(r);
  }
  size_t held() const { return held_.size(); }
  std::map<std::string, keyring::KeyResult> memory_;

 private:
  std::map<std::string, std::vector<async::Callback<keyring::KeyResult>>> held_;
};

// Queues tasks; the test runs them.
class QueueExecutor : public async::Executor {
 public:
  bool Post(async::Task task) override {
    tasks_.push_back(std::move(task));
    return true;
  }
  size_t queued() const { return tasks_.size(); }
  void RunAll() {
    while (!tasks_.empty()) {
      async::Task t = std::move(tasks_.front());
      tasks_.pop_front();
      t();
    }
  }

 private:
  std::deque<async::Task> tasks_;
};

class VerifierTest : public ::testing::Test {
 protected:
  VerifierTest() : clock_(absl::FromUnixMillis(kNowMs)) {}

  static core::Ed25519SigningKey KeyOf(const std::string& server) {
    return *core::Ed25519SigningKey::FromSeed(std::string(32, server[0]));
  }
  static keyring::KeyResult KeysOf(const std::string& server) {
    keyring::KeyResult r;
    r.server_name = server;
    core::VerifyKey k;
    k.key_id = kKeyId;
    k.public_key = KeyOf(server).public_key();
    k.valid_until_ts = kNowMs + 3600000;
    r.verify_keys.push_back(k);
    return r;
  }
  // A room version 10 message sent by `sender`'s server, signed by it; with
  // `authorised_by`, a restricted join that server authorised, signed by
  // both (the two signatures the room version requires).
  static v1::VerifyEventSignatureRequest Event(const std::string& sender, int n,
                                               const std::string& authorised_by = "") {
    std::vector<std::string> signers = {sender};
    std::string json = absl::StrCat(
        R"({"type":"m.room.message","room_id":"!r:)", sender, R"(","sender":"@a:)", sender,
        R"(","origin_server_ts":1699999999000,"depth":5,"prev_events":[],"auth_events":[],)",
        R"("content":{"msgtype":"m.text","body":"event )", n, R"("}})");
    if (!authorised_by.empty()) {
      signers.push_back(authorised_by);
      json = absl::StrCat(
          R"({"type":"m.room.member","state_key":"@a:)", sender, R"(","room_id":"!r:)", sender,
          R"(","sender":"@a:)", sender,
          R"(","origin_server_ts":1699999999000,"depth":5,"prev_events":[],"auth_events":[],)",
          R"("content":{"membership":"join","join_authorised_via_users_server":"@x:)",
          authorised_by, R"("}})");
    }
    core::Value event = *core::ParseJson(json);
    for (const std::string& s : signers) {
      EXPECT_TRUE(
          core::HashAndSignEvent(&event, **core::LookupRoomVersion("10"), s, kKeyId, KeyOf(s))
              .ok());
    }
    v1::VerifyEventSignatureRequest out;
    out.set_event_json(core::ToJson(event));
    out.set_room_version("10");
    return out;
  }

  testing::FakeClock clock_;
  ScriptedKeyRing keys_;
  QueueExecutor cpu_;
  Verifier verifier_{keys_, clock_, VerifierLimits{}, observe::NoopObserver(), nullptr, &cpu_};
};

// The events of a server that answered are checked while another server's
// keys are still awaited; the call is answered once every event is.
TEST_F(VerifierTest, BatchChecksEventsAsTheirServersAnswer) {
  v1::VerifyEventsRequest req;
  for (int i = 0; i < 70; ++i) *req.add_events() = Event("a.example", i);
  for (int i = 0; i < 3; ++i) *req.add_events() = Event("b.example", i);
  std::optional<absl::StatusOr<v1::VerifyEventsResponse>> got;
  verifier_.VerifyEvents(req, absl::InfiniteFuture(),
                         [&](absl::StatusOr<v1::VerifyEventsResponse> r) { got = std::move(r); });
  EXPECT_EQ(keys_.held(), 2u);  // one lookup per server, both at once
  EXPECT_EQ(cpu_.queued(), 0u);

  keys_.Answer("a.example", KeysOf("a.example"));
  EXPECT_EQ(cpu_.queued(), 1u);  // a's 70 events, before b answered
  cpu_.RunAll();
  EXPECT_FALSE(got.has_value());

  keys_.Answer("b.example", KeysOf("b.example"));
  EXPECT_EQ(cpu_.queued(), 1u);  // the rest
  EXPECT_FALSE(got.has_value());
  cpu_.RunAll();
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok()) << got->status();
  ASSERT_EQ((*got)->results_size(), 73);
  for (int i = 0; i < 73; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE((*got)->results(i).has_verdict()) << (*got)->results(i).error().message();
    EXPECT_EQ((*got)->results(i).verdict().outcome(), v1::EventVerdict::VALID);
  }
}

// A server whose keys could not be had fails its events (naming it), also
// a join it had to sign too; the others get verdicts, in request order.
TEST_F(VerifierTest, AFailedServerFailsOnlyTheEventsItSigned) {
  v1::VerifyEventsRequest req;
  *req.add_events() = Event("a.example", 0);
  *req.add_events() = Event("b.example", 1);
  *req.add_events() = Event("a.example", 2, "b.example");
  *req.add_events() = Event("c.example", 3);
  keys_.memory_["c.example"] = KeysOf("c.example");  // known: not looked up
  std::optional<absl::StatusOr<v1::VerifyEventsResponse>> got;
  verifier_.VerifyEvents(req, absl::InfiniteFuture(),
                         [&](absl::StatusOr<v1::VerifyEventsResponse> r) { got = std::move(r); });
  EXPECT_EQ(keys_.held(), 2u);
  keys_.Answer("b.example", absl::UnavailableError("GET https://b.example/_matrix/key/v2/server via "
                                                   "10.1.2.3:8448: connection refused"));
  keys_.Answer("a.example", KeysOf("a.example"));
  cpu_.RunAll();
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok()) << got->status();
  ASSERT_EQ((*got)->results_size(), 4);
  EXPECT_EQ((*got)->results(0).verdict().outcome(), v1::EventVerdict::VALID);
  for (int i : {1, 2}) {
    SCOPED_TRACE(i);
    ASSERT_TRUE((*got)->results(i).has_error());
    EXPECT_EQ((*got)->results(i).error().code(), static_cast<int>(absl::StatusCode::kUnavailable));
    EXPECT_TRUE(absl::StrContains((*got)->results(i).error().message(),
                                  absl::StrCat("events[", i, "].keys of b.example could not be obtained; "
                                               "details in the service log, error id ")))
        << (*got)->results(i).error().message();
    // The details are the observer's, not the caller's.
    EXPECT_FALSE(absl::StrContains((*got)->results(i).error().message(), "connection refused"));
  }
  EXPECT_EQ((*got)->results(3).verdict().outcome(), v1::EventVerdict::VALID);
}

// Every key in memory: checked on the caller's thread, nothing queued.
TEST_F(VerifierTest, KnownKeysAreCheckedInline) {
  keys_.memory_["a.example"] = KeysOf("a.example");
  v1::VerifyEventsRequest req;
  for (int i = 0; i < 3; ++i) *req.add_events() = Event("a.example", i);
  std::optional<absl::StatusOr<v1::VerifyEventsResponse>> got;
  verifier_.VerifyEvents(req, absl::InfiniteFuture(),
                         [&](absl::StatusOr<v1::VerifyEventsResponse> r) { got = std::move(r); });
  EXPECT_EQ(keys_.held(), 0u);
  EXPECT_EQ(cpu_.queued(), 0u);
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok());
  ASSERT_EQ((*got)->results_size(), 3);
  for (const v1::EventResult& r : (*got)->results()) {
    EXPECT_EQ(r.verdict().outcome(), v1::EventVerdict::VALID);
  }
}

// A key lookup returns both the validity the server published and the one
// events and requests are checked against (7 days from the last response
// that listed the key).
TEST_F(VerifierTest, KeysCarryPublishedAndUsableValidity) {
  keyring::KeyResult keys = KeysOf("a.example");
  keys.verify_keys[0].valid_until_ts = kNowMs + 30 * 24 * 3600 * 1000LL;
  keys.verify_keys[0].confirmed_ts = kNowMs - 1000;
  core::VerifyKey old = keys.verify_keys[0];
  old.key_id = "ed25519:old";
  old.valid_until_ts.reset();
  old.expired_ts = kNowMs - 5000;
  keys.old_verify_keys.push_back(old);
  v1::VerifyServerKeysRequest req;
  req.set_server_name("a.example");
  std::optional<absl::StatusOr<v1::VerifyServerKeysResponse>> got;
  verifier_.VerifyServerKeys(req, absl::InfiniteFuture(),
                             [&](absl::StatusOr<v1::VerifyServerKeysResponse> r) {
                               got = std::move(r);
                             });
  keys_.Answer("a.example", keys);
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok()) << got->status();
  ASSERT_EQ((*got)->verify_keys_size(), 1);
  EXPECT_EQ((*got)->verify_keys(0).valid_until_ts(), kNowMs + 30 * 24 * 3600 * 1000LL);
  EXPECT_EQ((*got)->verify_keys(0).usable_until_ts(), kNowMs - 1000 + 7 * 24 * 3600 * 1000LL);
  ASSERT_EQ((*got)->old_verify_keys_size(), 1);
  EXPECT_EQ((*got)->old_verify_keys(0).usable_until_ts(), 0);
  EXPECT_EQ((*got)->old_verify_keys(0).expired_ts(), kNowMs - 5000);
}

// Keys the operator banned: an event they signed is refused saying so, a
// lookup asking for one fails, and one asking for all leaves them out.
TEST_F(VerifierTest, BannedKeysVerifyNothingAndAreNotHandedOut) {
  keyring::KeyResult keys = KeysOf("a.example");
  core::VerifyKey other = keys.verify_keys[0];
  other.key_id = "ed25519:k2";
  other.public_key.fill(7);
  keys.verify_keys.push_back(other);
  keys.verify_keys[0].banned = true;  // ed25519:k1, which signs the events
  keys_.memory_["a.example"] = keys;
  std::optional<absl::StatusOr<v1::EventVerdict>> verdict;
  verifier_.VerifyEventSignature(Event("a.example", 1), absl::InfiniteFuture(),
                                 [&](absl::StatusOr<v1::EventVerdict> r) { verdict = std::move(r); });
  cpu_.RunAll();
  ASSERT_TRUE(verdict.has_value());
  ASSERT_TRUE(verdict->ok()) << verdict->status();
  EXPECT_EQ((*verdict)->outcome(), v1::EventVerdict::INVALID);
  EXPECT_EQ((*verdict)->reason(), v1::KEY_NOT_VALID);
  EXPECT_TRUE(absl::StrContains((*verdict)->message(), "banned by the operator"))
      << (*verdict)->message();

  auto lookup = [&](std::vector<std::string> ids) {
    v1::VerifyServerKeysRequest req;
    req.set_server_name("a.example");
    for (const std::string& id : ids) req.add_key_ids(id);
    std::optional<absl::StatusOr<v1::VerifyServerKeysResponse>> got;
    verifier_.VerifyServerKeys(req, absl::InfiniteFuture(),
                               [&](absl::StatusOr<v1::VerifyServerKeysResponse> r) {
                                 got = std::move(r);
                               });
    if (!got.has_value()) keys_.Answer("a.example", keys);
    return *got;
  };
  absl::StatusOr<v1::VerifyServerKeysResponse> asked = lookup({kKeyId});
  EXPECT_EQ(asked.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(asked.status().message(),
                                "key ed25519:k1 of a.example is banned by the operator"))
      << asked.status();
  absl::StatusOr<v1::VerifyServerKeysResponse> all = lookup({});
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->verify_keys_size(), 1);
  EXPECT_EQ(all->verify_keys(0).key_id(), "ed25519:k2");
}

// Details observed, by error id.
class DetailObserver : public observe::Observer {
 public:
  void OnErrorDetail(absl::string_view id, absl::string_view detail) override {
    details[std::string(id)] = std::string(detail);
  }
  std::map<std::string, std::string> details;
};

// A server-side failure reaches the caller as its kind and an error id; the
// resolved addresses and transport particulars go to the observer (the log)
// under that id. The caller's own mistakes keep their full message.
TEST_F(VerifierTest, ServerSideErrorDetailsStayInTheLog) {
  DetailObserver observer;
  Verifier verifier(keys_, clock_, VerifierLimits{}, observer, nullptr, &cpu_);
  v1::VerifyServerKeysRequest req;
  req.set_server_name("a.example");
  std::optional<absl::StatusOr<v1::VerifyServerKeysResponse>> got;
  verifier.VerifyServerKeys(req, absl::InfiniteFuture(),
                            [&](absl::StatusOr<v1::VerifyServerKeysResponse> r) {
                              got = std::move(r);
                            });
  keys_.Answer("a.example", absl::UnavailableError(
                                "GET https://a.example/_matrix/key/v2/server via 10.1.2.3:8448: "
                                "Failed to connect to a.example port 8448: Connection refused"));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), absl::StatusCode::kUnavailable);
  const std::string message(got->status().message());
  EXPECT_FALSE(absl::StrContains(message, "10.1.2.3")) << message;
  EXPECT_FALSE(absl::StrContains(message, "Connection refused")) << message;
  ASSERT_EQ(observer.details.size(), 1u);
  const auto& [id, detail] = *observer.details.begin();
  EXPECT_EQ(id.size(), 16u);
  EXPECT_EQ(message, absl::StrCat("keys of a.example could not be obtained; details in the "
                                  "service log, error id ",
                                  id));
  EXPECT_EQ(detail, "keys of a.example: GET https://a.example/_matrix/key/v2/server via "
                    "10.1.2.3:8448: Failed to connect to a.example port 8448: Connection refused");
  // The caller's own mistake: said in full, nothing logged.
  req.set_server_name("not a name");
  got.reset();
  verifier.VerifyServerKeys(req, absl::InfiniteFuture(),
                            [&](absl::StatusOr<v1::VerifyServerKeysResponse> r) {
                              got = std::move(r);
                            });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(got->status().message(), "server_name")) << got->status();
  EXPECT_EQ(observer.details.size(), 1u);
}

}  // namespace
}  // namespace keyverifier::api
