// Every RPC through a real gRPC channel on a loopback port chosen by the
// kernel, with fakes at the keyring and clock seams.
#include "service/api/grpc_service.h"
#include "service/diagnose/diagnoser.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpc/support/time.h"
#include "gtest/gtest.h"
#include "service/core/canonical_json.h"
#include "service/core/crypto.h"
#include "service/core/event_verifier.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/room_version.h"
#include "service/core/x_matrix.h"
#include "service/net/ip_filter.h"
#include "service/tls/certificate_checker.h"
#include "service/tls/certificate_policy.h"
#include "tests/fakes/fake_keyring.h"
#include "tests/testing/server_name.h"
#include "tests/tls/test_pki.h"

namespace keyverifier::api {
namespace {

// A deadline `timeout` from now on the monotonic clock: a step of the wall
// clock while the test runs cannot make every later call's deadline pass.
gpr_timespec In(absl::Duration timeout) {
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                      gpr_time_from_micros(absl::ToInt64Microseconds(timeout), GPR_TIMESPAN));
}

using ::keyverifier::testing::Name;

using ::testing::HasSubstr;
using keyverifier::testing::FakeClock;
using keyverifier::testing::FakeKeyRing;

constexpr int64_t kNowMs = 1700000000000;
constexpr char kOrigin[] = "origin.example";
constexpr char kKeyId[] = "ed25519:k1";

// Answers only at the caller's deadline, as the keyring does for a caller
// whose keys a fetch that never ends has not brought.
class HangingKeyRing : public keyring::KeyRing {
 public:
  ~HangingKeyRing() override {
    for (std::thread& t : timers_) t.join();
  }
  void GetKeys(const keyring::KeyQuery& q, absl::Time deadline,
               async::Callback<keyring::KeyResult> done) override {
    absl::MutexLock lock(&mu_);
    timers_.emplace_back([server = q.server_name, deadline, done = std::move(done)]() mutable {
      absl::SleepFor(deadline - absl::Now());
      done(absl::DeadlineExceededError("keys of " + server.str() + ": timed out"));
    });
  }

 private:
  absl::Mutex mu_;
  std::vector<std::thread> timers_ ABSL_GUARDED_BY(mu_);
};

// Holds lookups until Open(), then answers them (and all later ones) from
// `inner`.
class GateKeyRing : public keyring::KeyRing {
 public:
  explicit GateKeyRing(keyring::KeyRing& inner) : inner_(inner) {}
  void GetKeys(const keyring::KeyQuery& q, absl::Time deadline,
               async::Callback<keyring::KeyResult> done) override {
    {
      absl::MutexLock lock(&mu_);
      if (!open_) {
        held_.push_back({q, deadline, std::move(done)});
        if (!entered.HasBeenNotified()) entered.Notify();
        return;
      }
    }
    inner_.GetKeys(q, deadline, std::move(done));
  }
  void Open() {
    std::vector<Held> held;
    {
      absl::MutexLock lock(&mu_);
      open_ = true;
      held = std::move(held_);
    }
    for (Held& h : held) inner_.GetKeys(h.query, h.deadline, std::move(h.done));
  }
  absl::Notification entered;

 private:
  struct Held {
    keyring::KeyQuery query;
    absl::Time deadline;
    async::Callback<keyring::KeyResult> done;
  };
  keyring::KeyRing& inner_;
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Held> held_ ABSL_GUARDED_BY(mu_);
};

// Counts the calls refused before any work, by reason.
class RefusalCounter : public observe::Observer {
 public:
  void OnCallRefused(absl::string_view reason) override {
    absl::MutexLock lock(&mu);
    reasons.push_back(std::string(reason));
  }
  absl::Mutex mu;
  std::vector<std::string> reasons ABSL_GUARDED_BY(mu);
};

class Server {
 public:
  Server(keyring::KeyRing& keys, const Clock& clock, VerifierLimits limits = {},
         const tls::CertificateChecker* certificates = nullptr,
         size_t max_held_bytes = size_t{256} << 20, diagnose::Diagnoser* diagnoser = nullptr)
      : pool_(*async::WorkerPool::Create(2, 64)),
        verifier_(keys, clock, limits, observe::NoopObserver(), certificates, pool_.get()),
        service_(verifier_, *pool_, system_clock_, {}, refusals,
                 absl::Seconds(60), max_held_bytes) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    service_.set_diagnoser(diagnoser);
    service_.Register(builder, 2);
    builder.SetMaxReceiveMessageSize(1 << 20);
    server_ = builder.BuildAndStart();
    service_.Start();
    stub_ = v1::KeyVerifier::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials()));
  }
  ~Server() {
    server_->Shutdown();
    service_.Stop();
    pool_->Stop();
  }
  // As the binary on SIGTERM: stop accepting calls, let those in flight
  // finish within `grace` (then cancel them), stop the service's threads.
  void Drain(absl::Duration grace) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    service_.Stop();
  }
  v1::KeyVerifier::Stub& stub() { return *stub_; }
  RefusalCounter refusals;  // before the service, which reports to it

 private:
  SystemClock system_clock_;
  std::unique_ptr<async::WorkerPool> pool_;
  Verifier verifier_;
  KeyVerifierService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::KeyVerifier::Stub> stub_;
};

class GrpcServiceTest : public ::testing::Test {
 protected:
  GrpcServiceTest()
      : clock_(absl::FromUnixMillis(kNowMs)),
        key_(*core::Ed25519SigningKey::FromSeed(std::string(32, '\x07'))) {
    keyring::KeyResult r;
    r.server_name = kOrigin;
    core::VerifyKey k;
    k.key_id = kKeyId;
    k.public_key = key_.public_key();
    k.valid_until_ts = kNowMs + 3600000;
    r.verify_keys.push_back(k);
    store::StoredResponse resp;
    resp.raw_json = "{\"server_name\":\"origin.example\"}";
    r.responses.push_back(resp);
    r.source.kind = keyring::KeySource::Kind::kOrigin;
    keys_.Add(r);
  }

  std::string SignedEvent(const std::string& room_version,
                          const std::string& body = "hello") {
    core::Value event = *core::ParseJson(
        R"({"type":"m.room.message","room_id":"!r:origin.example",
            "sender":"@alice:origin.example","origin_server_ts":1699999999000,
            "depth":5,"prev_events":[],"auth_events":[],
            "content":{"msgtype":"m.text","body":")" + body + R"("}})");
    EXPECT_TRUE(core::HashAndSignEvent(&event, **core::LookupRoomVersion(room_version),
                                       kOrigin, kKeyId, key_)
                    .ok());
    return core::ToJson(event);
  }

  static std::unique_ptr<grpc::ClientContext> Context(
      absl::Duration timeout = absl::Seconds(10)) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(In(timeout));
    return ctx;
  }

  FakeKeyRing keys_;
  FakeClock clock_;
  core::Ed25519SigningKey key_;
};

TEST_F(GrpcServiceTest, ValidEvent) {
  Server server(keys_, clock_);
  v1::VerifyEventSignatureRequest req;
  req.set_event_json(SignedEvent("10"));
  req.set_room_version("10");
  v1::EventVerdict resp;
  grpc::Status s = server.stub().VerifyEventSignature(Context().get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.outcome(), v1::EventVerdict::VALID);
  EXPECT_EQ(resp.reason(), v1::OK);
  EXPECT_EQ(resp.event_id().substr(0, 1), "$");
  ASSERT_EQ(resp.checked_size(), 1);
  EXPECT_EQ(resp.checked(0).server_name(), kOrigin);
  EXPECT_EQ(resp.checked(0).key_ids(0), kKeyId);
  // The keyring was asked for the signing key, valid at the event's time.
  EXPECT_EQ(keys_.last_query().key_ids, std::vector<std::string>{kKeyId});
  EXPECT_EQ(keys_.last_query().minimum_valid_until_ts, 1699999999000);
}

TEST_F(GrpcServiceTest, DiagnoseServerIsUnimplementedWithoutADiagnoser) {
  Server server(keys_, clock_);
  v1::DiagnoseServerRequest req;
  req.set_server_name("origin.example");
  v1::DiagnoseServerResponse resp;
  grpc::Status s = server.stub().DiagnoseServer(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << s.error_message();
}

TEST_F(GrpcServiceTest, DiagnoseServerErrorsGoThroughTheOneStatusMapping) {
  // A malformed name is refused before anything is looked up: the
  // Diagnoser needs none of its parts for it.
  diagnose::Diagnoser diagnoser({}, {});
  Server server(keys_, clock_, {}, nullptr, size_t{256} << 20, &diagnoser);
  v1::DiagnoseServerRequest req;
  req.set_server_name("not a server name");
  v1::DiagnoseServerResponse resp;
  grpc::Status s = server.stub().DiagnoseServer(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("server_name"), std::string::npos) << s.error_message();
}

TEST_F(GrpcServiceTest, TamperedSignatureIsAnInvalidVerdictNotAnError) {
  Server server(keys_, clock_);
  std::string event = SignedEvent("10");
  core::Value v = *core::ParseJson(event);
  v.Set("sender", core::Value::String("@mallory:origin.example"));
  v1::VerifyEventSignatureRequest req;
  req.set_event_json(core::ToJson(v));
  req.set_room_version("10");
  v1::EventVerdict resp;
  ASSERT_TRUE(server.stub().VerifyEventSignature(Context().get(), req, &resp).ok());
  EXPECT_EQ(resp.outcome(), v1::EventVerdict::INVALID);
  EXPECT_EQ(resp.reason(), v1::BAD_SIGNATURE);
  EXPECT_THAT(resp.message(), HasSubstr(kKeyId));
}

TEST_F(GrpcServiceTest, ChangedContentIsValidButRedacted) {
  Server server(keys_, clock_);
  core::Value v = *core::ParseJson(SignedEvent("10"));
  v.FindMutable("content")->Set("body", core::Value::String("changed"));
  v1::VerifyEventSignatureRequest req;
  req.set_event_json(core::ToJson(v));
  req.set_room_version("10");
  v1::EventVerdict resp;
  ASSERT_TRUE(server.stub().VerifyEventSignature(Context().get(), req, &resp).ok());
  EXPECT_EQ(resp.outcome(), v1::EventVerdict::VALID_BUT_REDACTED);
  EXPECT_EQ(resp.reason(), v1::CONTENT_HASH_MISMATCH);
  EXPECT_THAT(resp.redacted_event(), HasSubstr(R"("content":{})"));
  EXPECT_THAT(resp.redacted_event(), ::testing::Not(HasSubstr("changed")));
}

TEST_F(GrpcServiceTest, UnknownServerIsNotFound) {
  Server server(keys_, clock_);
  core::Value v = *core::ParseJson(SignedEvent("10"));
  core::Value sigs = *v.Find("signatures");
  v.Set("sender", core::Value::String("@bob:elsewhere.example"));
  core::Value moved = core::Value::Object();
  moved.Set("elsewhere.example", *sigs.Find(kOrigin));
  v.Set("signatures", moved);
  v1::VerifyEventSignatureRequest req;
  req.set_event_json(core::ToJson(v));
  req.set_room_version("10");
  v1::EventVerdict resp;
  grpc::Status s = server.stub().VerifyEventSignature(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("elsewhere.example"));
}

TEST_F(GrpcServiceTest, MalformedInputNamesTheField) {
  Server server(keys_, clock_);
  v1::VerifyEventSignatureRequest req;
  req.set_event_json("{not json");
  req.set_room_version("10");
  v1::EventVerdict resp;
  grpc::Status s = server.stub().VerifyEventSignature(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("event_json"));

  req.set_event_json(SignedEvent("10"));
  req.set_room_version("42");
  s = server.stub().VerifyEventSignature(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("room_version"));
}

TEST_F(GrpcServiceTest, OversizeEventAndOversizeMessage) {
  Server server(keys_, clock_);
  v1::VerifyEventSignatureRequest req;
  req.set_event_json(SignedEvent("10", std::string(70000, 'x')));
  req.set_room_version("10");
  v1::EventVerdict resp;
  grpc::Status s = server.stub().VerifyEventSignature(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("limit is 65536"));

  req.set_event_json(std::string(2 << 20, ' '));  // beyond the server's 1 MiB
  s = server.stub().VerifyEventSignature(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(GrpcServiceTest, DeadlineWhileWaitingForKeys) {
  HangingKeyRing hanging;
  Server server(hanging, clock_);
  v1::VerifyEventSignatureRequest req;
  req.set_event_json(SignedEvent("10"));
  req.set_room_version("10");
  v1::EventVerdict resp;
  grpc::Status s = server.stub().VerifyEventSignature(
      Context(absl::Milliseconds(300)).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

// New calls are refused once a drain has begun; until then they are served.
void WaitUntilRefused(Server& server) {
  v1::VerifyEventsResponse unused;
  for (int i = 0; i < 1000; ++i) {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(5)));
    if (!server.stub().VerifyEvents(&context, v1::VerifyEventsRequest(), &unused).ok()) return;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ADD_FAILURE() << "calls were still served after the drain began";
}

// Calls waiting for keys hold their requests: beyond max_held_bytes new
// calls are refused at once, and the bytes are given back as calls are
// answered.
TEST_F(GrpcServiceTest, RequestBytesHeldByWaitingCallsAreBounded) {
  GateKeyRing gate(keys_);
  Server server(gate, clock_, {}, nullptr, /*max_held_bytes=*/6000);
  v1::VerifyEventsRequest req;
  for (int i = 0; i < 10; ++i) {
    v1::VerifyEventSignatureRequest* event = req.add_events();
    event->set_event_json(SignedEvent("10", absl::StrCat("event ", i)));
    event->set_room_version("10");
  }
  ASSERT_GT(req.ByteSizeLong(), 3000u);  // two of them do not fit
  ASSERT_LT(req.ByteSizeLong(), 6000u);  // one does
  v1::VerifyEventsResponse first_resp;
  grpc::Status first;
  std::thread call([&] { first = server.stub().VerifyEvents(Context().get(), req, &first_resp); });
  gate.entered.WaitForNotification();  // the first waits for its keys
  v1::VerifyEventsResponse resp;
  grpc::Status second = server.stub().VerifyEvents(Context().get(), req, &resp);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(second.error_message(), HasSubstr("too many request bytes waiting"));
  {
    absl::MutexLock lock(&server.refusals.mu);
    EXPECT_EQ(server.refusals.reasons, std::vector<std::string>{"pending_bytes"});
  }
  gate.Open();
  call.join();
  ASSERT_TRUE(first.ok()) << first.error_message();
  EXPECT_EQ(first_resp.results_size(), 10);
  // Answered: its bytes are free again.
  grpc::Status third = server.stub().VerifyEvents(Context().get(), req, &resp);
  ASSERT_TRUE(third.ok()) << third.error_message();
  EXPECT_EQ(resp.results_size(), 10);
}

TEST_F(GrpcServiceTest, DrainLetsACallInFlightFinish) {
  GateKeyRing gate(keys_);
  Server server(gate, clock_);
  v1::VerifyEventSignatureRequest req;
  req.set_event_json(SignedEvent("10"));
  req.set_room_version("10");
  v1::EventVerdict resp;
  grpc::Status s;
  std::thread call([&] { s = server.stub().VerifyEventSignature(Context().get(), req, &resp); });
  gate.entered.WaitForNotification();
  std::thread drain([&] { server.Drain(absl::Seconds(30)); });
  WaitUntilRefused(server);
  gate.Open();
  call.join();
  drain.join();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.outcome(), v1::EventVerdict::VALID);
}

TEST_F(GrpcServiceTest, DrainCancelsACallStillWaitingAfterTheGraceAndWaitsForIt) {
  GateKeyRing gate(keys_);
  Server server(gate, clock_);
  v1::VerifyEventsRequest req;
  v1::VerifyEventSignatureRequest* event = req.add_events();
  event->set_event_json(SignedEvent("10"));
  event->set_room_version("10");
  v1::VerifyEventsResponse resp;
  grpc::Status s;
  std::thread call([&] { s = server.stub().VerifyEvents(Context().get(), req, &resp); });
  gate.entered.WaitForNotification();
  absl::Notification drained;
  std::thread drain([&] {
    server.Drain(absl::Milliseconds(200));
    drained.Notify();
  });
  call.join();  // cancelled once the grace is over, its keys still awaited
  EXPECT_FALSE(s.ok());
  // The drain waits for the call to be answered: give one that did not wait
  // time to end.
  EXPECT_FALSE(drained.WaitForNotificationWithTimeout(absl::Milliseconds(500)));
  gate.Open();  // the keys arrive for a call that is already cancelled
  drain.join();
  EXPECT_TRUE(drained.HasBeenNotified());
}

TEST_F(GrpcServiceTest, BatchKeepsOrderAndGivesPerEventErrors) {
  Server server(keys_, clock_);
  v1::VerifyEventsRequest req;
  auto* a = req.add_events();
  a->set_event_json(SignedEvent("10", "one"));
  a->set_room_version("10");
  auto* b = req.add_events();
  b->set_event_json("[]");
  b->set_room_version("10");
  auto* c = req.add_events();
  c->set_event_json(SignedEvent("9", "three"));
  c->set_room_version("9");
  v1::VerifyEventsResponse resp;
  ASSERT_TRUE(server.stub().VerifyEvents(Context().get(), req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 3);
  EXPECT_EQ(resp.results(0).verdict().outcome(), v1::EventVerdict::VALID);
  EXPECT_EQ(resp.results(1).error().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(resp.results(1).error().message(), HasSubstr("events[1]"));
  EXPECT_EQ(resp.results(2).verdict().outcome(), v1::EventVerdict::VALID);
}

TEST_F(GrpcServiceTest, BatchAsksTheKeyringOncePerServer) {
  Server server(keys_, clock_);
  v1::VerifyEventsRequest req;
  for (int i = 0; i < 10; ++i) {
    auto* e = req.add_events();
    e->set_event_json(SignedEvent("10", "event " + std::to_string(i)));
    e->set_room_version("10");
  }
  v1::VerifyEventsResponse resp;
  ASSERT_TRUE(server.stub().VerifyEvents(Context().get(), req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 10);
  for (const auto& r : resp.results()) {
    EXPECT_EQ(r.verdict().outcome(), v1::EventVerdict::VALID);
  }
  EXPECT_EQ(keys_.calls(), 1);
}

// Answers each query with only the keys it names, as a keyring that has just
// fetched them might.
class OnlyAskedKeysKeyRing : public keyring::KeyRing {
 public:
  explicit OnlyAskedKeysKeyRing(keyring::KeyResult all) : all_(std::move(all)) {}
  void GetKeys(const keyring::KeyQuery& q, absl::Time,
               async::Callback<keyring::KeyResult> done) override {
    ++calls_;
    keyring::KeyResult r = all_;
    r.verify_keys.clear();
    for (const core::VerifyKey& k : all_.verify_keys) {
      if (std::find(q.key_ids.begin(), q.key_ids.end(), k.key_id) != q.key_ids.end()) {
        r.verify_keys.push_back(k);
      }
    }
    done(std::move(r));
  }
  int calls() const { return calls_; }

 private:
  keyring::KeyResult all_;
  int calls_ = 0;
};

// Events of one server signed with different keys, where each answer of the
// keyring holds only the keys asked for: the batch's one lookup for the
// server asks for every key id its events need.
TEST_F(GrpcServiceTest, BatchEventsOfOneServerWithDifferentKeys) {
  core::Ed25519SigningKey second =
      *core::Ed25519SigningKey::FromSeed(std::string(32, '\x09'));
  keyring::KeyResult all;
  all.server_name = kOrigin;
  for (const auto& [id, key] : {std::pair<const char*, const core::Ed25519SigningKey*>{
                                    kKeyId, &key_},
                                {"ed25519:k2", &second}}) {
    core::VerifyKey k;
    k.key_id = id;
    k.public_key = key->public_key();
    k.valid_until_ts = kNowMs + 3600000;
    all.verify_keys.push_back(k);
  }
  all.source.kind = keyring::KeySource::Kind::kOrigin;
  OnlyAskedKeysKeyRing ring(all);
  Server server(ring, clock_);
  v1::VerifyEventsRequest req;
  for (int i = 0; i < 3; ++i) {
    core::Value event = *core::ParseJson(SignedEvent("10", "event " + std::to_string(i)));
    if (i == 1) {  // signed with the second key only
      event.Erase("signatures");
      ASSERT_TRUE(core::HashAndSignEvent(&event, **core::LookupRoomVersion("10"),
                                         kOrigin, "ed25519:k2", second)
                      .ok());
    }
    auto* e = req.add_events();
    e->set_event_json(core::ToJson(event));
    e->set_room_version("10");
  }
  v1::VerifyEventsResponse resp;
  ASSERT_TRUE(server.stub().VerifyEvents(Context().get(), req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 3);
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(resp.results(i).verdict().outcome(), v1::EventVerdict::VALID)
        << resp.results(i).verdict().message();
  }
  EXPECT_EQ(resp.results(1).verdict().checked(0).key_ids(0), "ed25519:k2");
  // The batch asks once for the server, naming both key ids.
  EXPECT_EQ(ring.calls(), 1);
}

TEST_F(GrpcServiceTest, BatchLimit) {
  VerifierLimits limits;
  limits.max_events_per_batch = 2;
  Server server(keys_, clock_, limits);
  v1::VerifyEventsRequest req;
  for (int i = 0; i < 3; ++i) req.add_events()->set_room_version("10");
  v1::VerifyEventsResponse resp;
  grpc::Status s = server.stub().VerifyEvents(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("limit is 2"));
}

TEST_F(GrpcServiceTest, RequestAuth) {
  Server server(keys_, clock_);
  core::FederationRequest fed{"PUT", "/_matrix/federation/v1/send/1", "me.example",
                              R"({"pdus":[]})"};
  std::string header = *core::SignFederationRequest(fed, kOrigin, kKeyId, key_);
  v1::VerifyRequestAuthRequest req;
  req.set_method(fed.method);
  req.set_uri(fed.uri);
  req.set_destination(fed.destination);
  req.set_body(fed.body);
  req.add_authorization(header);
  v1::VerifyRequestAuthResponse resp;
  grpc::Status s = server.stub().VerifyRequestAuth(Context().get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.authenticated()) << resp.message();
  EXPECT_EQ(resp.origin(), kOrigin);

  req.set_uri("/_matrix/federation/v1/send/2");
  ASSERT_TRUE(server.stub().VerifyRequestAuth(Context().get(), req, &resp).ok());
  EXPECT_FALSE(resp.authenticated());
  EXPECT_EQ(resp.reason(), v1::BAD_SIGNATURE);

  req.clear_authorization();
  req.add_authorization("X-Matrix origin=\"evil host\",key=\"ed25519:k1\",sig=\"abc\"");
  s = server.stub().VerifyRequestAuth(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("authorization[0].origin"));
  EXPECT_EQ(keys_.last_query().server_name.str(), kOrigin);  // never looked up

  req.clear_authorization();
  req.add_authorization("Bearer abc");
  s = server.stub().VerifyRequestAuth(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("authorization[0]"));
}

TEST_F(GrpcServiceTest, RequestAuthBodyNotJsonIsInvalidArgumentWhateverTheKeys) {
  Server server(keys_, clock_);
  core::FederationRequest fed{"PUT", "/_matrix/federation/v1/send/1", "me.example",
                              R"({"pdus":[]})"};
  for (const char* origin : {kOrigin, "unknown.example"}) {
    SCOPED_TRACE(origin);
    v1::VerifyRequestAuthRequest req;
    req.set_method(fed.method);
    req.set_uri(fed.uri);
    req.set_destination(fed.destination);
    req.set_body("{\"pdus\": [");
    req.add_authorization(*core::SignFederationRequest(fed, origin, kKeyId, key_));
    v1::VerifyRequestAuthResponse resp;
    grpc::Status s = server.stub().VerifyRequestAuth(Context().get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr("body: request body:"));
  }
}

TEST_F(GrpcServiceTest, ServerKeys) {
  Server server(keys_, clock_);
  v1::VerifyServerKeysRequest req;
  req.set_server_name(kOrigin);
  v1::VerifyServerKeysResponse resp;
  ASSERT_TRUE(server.stub().VerifyServerKeys(Context().get(), req, &resp).ok());
  EXPECT_EQ(resp.server_name(), kOrigin);
  ASSERT_EQ(resp.verify_keys_size(), 1);
  EXPECT_EQ(resp.verify_keys(0).key_id(), kKeyId);
  EXPECT_EQ(resp.verify_keys(0).public_key(),
            std::string(core::AsStringView(key_.public_key())));
  EXPECT_EQ(resp.source().kind(), v1::KeySource::ORIGIN);
  EXPECT_EQ(resp.raw_json_size(), 1);

  req.set_server_name("bad name!");
  grpc::Status s = server.stub().VerifyServerKeys(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("server_name"));

  req.set_server_name("unknown.example");
  s = server.stub().VerifyServerKeys(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
}

// CheckCertificate through a real channel, on chains from a test PKI.
class CheckCertificateTest : public GrpcServiceTest {
 protected:
  CheckCertificateTest() : pki_(tls::testing::MakeHierarchy("origin.example")) {
    std::vector<tls::X509Ptr> roots;
    roots.push_back(pki_.root.Ref());
    tls::CertificatePolicyOptions o;
    o.trust_store = *tls::TrustStore::FromCertificates(std::move(roots));
    o.whitelist = {"*.onion"};
    policy_ = *tls::CertificatePolicy::Create(std::move(o));
    checker_ = std::make_unique<tls::CertificateChecker>(*policy_, nullptr, clock_);
  }
  v1::CheckCertificateRequest Offered(const std::string& name) {
    v1::CheckCertificateRequest req;
    req.set_server_name(name);
    req.set_pem_chain(pki_.leaf.Pem() + pki_.intermediate.Pem());
    req.set_at_ts(absl::ToUnixMillis(tls::testing::DefaultValidationTime()));
    return req;
  }

  tls::testing::Hierarchy pki_;
  net::IpFilter filter_ = net::IpFilter::AllowAll();
  std::unique_ptr<tls::CertificatePolicy> policy_;
  std::unique_ptr<tls::CertificateChecker> checker_;
};

TEST_F(CheckCertificateTest, OfferedChainForTheServerNameIsValid) {
  Server server(keys_, clock_, {}, checker_.get());
  v1::CheckCertificateResponse resp;
  grpc::Status s =
      server.stub().CheckCertificate(Context().get(), Offered("origin.example:8448"), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.valid()) << absl::StrJoin(resp.reasons(), "; ");
  EXPECT_EQ(resp.checked_name(), "origin.example");
  ASSERT_EQ(resp.chain_size(), 2);
  EXPECT_EQ(resp.chain(0).names(0), "origin.example");
  EXPECT_EQ(resp.chain(0).sha256_fingerprint().size(), 32u);
  EXPECT_GT(resp.chain(0).not_after_ts(), resp.chain(0).not_before_ts());
  EXPECT_TRUE(resp.applied_rule().empty());
}

TEST_F(CheckCertificateTest, AnotherNameIsAnInvalidVerdictWithTheReason) {
  Server server(keys_, clock_, {}, checker_.get());
  v1::CheckCertificateResponse resp;
  grpc::Status s = server.stub().CheckCertificate(Context().get(), Offered("other.example"), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(resp.valid());
  ASSERT_GT(resp.reasons_size(), 0);
  EXPECT_TRUE(absl::StartsWith(resp.reasons(0), "hostname_mismatch")) << resp.reasons(0);
  EXPECT_TRUE(absl::StrContains(resp.reasons(0), "origin.example")) << resp.reasons(0);
}

TEST_F(CheckCertificateTest, DerChainAndExpiryAtAGivenTime) {
  Server server(keys_, clock_, {}, checker_.get());
  v1::CheckCertificateRequest req = Offered("origin.example");
  req.mutable_der_chain()->add_certificates(pki_.leaf.Der());
  req.mutable_der_chain()->add_certificates(pki_.intermediate.Der());
  v1::CheckCertificateResponse resp;
  ASSERT_TRUE(server.stub().CheckCertificate(Context().get(), req, &resp).ok());
  EXPECT_TRUE(resp.valid()) << absl::StrJoin(resp.reasons(), "; ");
  req.set_at_ts(absl::ToUnixMillis(tls::testing::DefaultValidationTime() + absl::Hours(24 * 3650)));
  ASSERT_TRUE(server.stub().CheckCertificate(Context().get(), req, &resp).ok());
  EXPECT_FALSE(resp.valid());
  EXPECT_TRUE(absl::StrContains(absl::StrJoin(resp.reasons(), "; "), "expired"))
      << absl::StrJoin(resp.reasons(), "; ");
}

TEST_F(CheckCertificateTest, WhitelistedNameSaysWhichRule) {
  Server server(keys_, clock_, {}, checker_.get());
  v1::CheckCertificateResponse resp;
  ASSERT_TRUE(server.stub().CheckCertificate(Context().get(), Offered("hidden.onion"), &resp).ok());
  EXPECT_TRUE(resp.valid());
  EXPECT_EQ(resp.applied_rule(), "whitelist_glob:*.onion");
}

TEST_F(CheckCertificateTest, UnusableRequestsAreErrorsNamingTheField) {
  Server server(keys_, clock_, {}, checker_.get());
  v1::CheckCertificateResponse resp;
  v1::CheckCertificateRequest none;
  none.set_server_name("origin.example");
  grpc::Status s = server.stub().CheckCertificate(Context().get(), none, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "chain_source")) << s.error_message();
  v1::CheckCertificateRequest bad_name = Offered("not a name!");
  s = server.stub().CheckCertificate(Context().get(), bad_name, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "server_name")) << s.error_message();
  v1::CheckCertificateRequest live;
  live.set_server_name("origin.example");
  live.set_connect(true);
  s = server.stub().CheckCertificate(Context().get(), live, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
}

TEST_F(CheckCertificateTest, WithoutAPolicyItIsFailedPrecondition) {
  Server server(keys_, clock_);
  v1::CheckCertificateResponse resp;
  grpc::Status s = server.stub().CheckCertificate(Context().get(), Offered("origin.example"), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace keyverifier::api
