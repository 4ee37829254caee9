// Event verification speed: the full path (parse -> content hash -> redact ->
// canonicalise -> reference hash -> ed25519 verify) against a bare libsodium
// crypto_sign_verify_detached of the same signed bytes, in the same run.
// The JSON and hash work should cost under ~10% of the verify: the target is
// full-path throughput >= 0.90x the bare verify's. Prints the ratio at the end.
//
//   bazel run //tests/bench:event_verify_benchmark
#include <sodium.h>

#include <iostream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "service/core/base64.h"
#include "service/core/crypto.h"
#include "service/core/event_verifier.h"
#include "service/core/json.h"
#include "service/core/room_version.h"

namespace keyverifier::core {
namespace {

constexpr int64_t kNow = 1700000000000;

struct Fixture {
  std::string event_json;
  std::string signed_bytes;
  std::string signature;
  std::vector<VerifyKey> keys;
  const RoomVersion* room;
};

// A realistic m.room.message of about 1.2 KB, signed as a server would.
Fixture MakeFixture() {
  Fixture f;
  f.room = *LookupRoomVersion("10");
  Ed25519SigningKey key = *Ed25519SigningKey::FromSeed(std::string(32, '\x42'));
  std::string body;
  while (body.size() < 520) {
    body += "Federation keeps rooms in sync across servers; every event is "
            "signed by its origin. ";
  }
  std::string event_text = absl::StrCat(R"({
    "type": "m.room.message",
    "room_id": "!OGEhHVWSdvArJzumhm:matrix.example.org",
    "sender": "@alice.smith:matrix.example.org",
    "origin_server_ts": 1699999990000,
    "depth": 48213,
    "content": {
      "msgtype": "m.text",
      "body": ")", body, R"(",
      "format": "org.matrix.custom.html",
      "formatted_body": "<p>)", body.substr(0, 200), R"(</p>",
      "m.mentions": {"user_ids": ["@bob:other.example.net"]},
      "m.relates_to": {"m.in_reply_to": {"event_id": "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"}}
    },
    "prev_events": ["$0K5Ow9gQVdDoh6pVPXtTEwwI-C2tSfV-9FsTy_5ZKRQ"],
    "auth_events": [
      "$Cg6ZdvPsYC3prqSiJ2tX8W91JGDEnGs8DkpKq5Q4uyI",
      "$5hnSNx0E3Qv6a8_hNTnDd23lu9q9OuvpZGXDSy1Ixsc",
      "$jXQJjRBaNaF2M5lUQ94JOs8nP4MbTUMQ_Io7p8nKr3k"
    ],
    "unsigned": {"age_ts": 1699999990000}
  })");
  Value event = *ParseJson(event_text);
  HashAndSignEvent(&event, *f.room, "matrix.example.org", "ed25519:a_Bcde",
                   key)
      .IgnoreError();
  f.event_json = ToJson(event);
  PreparedEvent p = *PrepareEvent(f.event_json, *f.room);
  f.signed_bytes = p.signed_bytes;
  f.signature = *DecodeBase64(p.redacted.Find("signatures")
                                  ->Find("matrix.example.org")
                                  ->Find("ed25519:a_Bcde")
                                  ->string_value());
  VerifyKey vk;
  vk.key_id = "ed25519:a_Bcde";
  vk.public_key = key.public_key();
  vk.valid_until_ts = kNow + 3600000;
  f.keys.push_back(vk);
  return f;
}

const Fixture& GetFixture() {
  static const Fixture* f = new Fixture(MakeFixture());
  return *f;
}

void BM_BareSodiumVerify(benchmark::State& state) {
  const Fixture& f = GetFixture();
  for (auto _ : state) {
    int rc = crypto_sign_verify_detached(
        reinterpret_cast<const unsigned char*>(f.signature.data()),
        reinterpret_cast<const unsigned char*>(f.signed_bytes.data()),
        f.signed_bytes.size(), f.keys[0].public_key.data());
    benchmark::DoNotOptimize(rc);
    if (rc != 0) state.SkipWithError("bare verify failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BareSodiumVerify);

void BM_FullEventVerify(benchmark::State& state) {
  const Fixture& f = GetFixture();
  KeyLookup lookup = [&](absl::string_view) {
    return absl::Span<const VerifyKey>(f.keys);
  };
  for (auto _ : state) {
    absl::StatusOr<PreparedEvent> p = PrepareEvent(f.event_json, *f.room);
    EventVerdict v = VerifyPreparedEvent(*p, lookup, kNow);
    if (v.outcome != EventVerdict::Outcome::kValid) {
      state.SkipWithError("full path did not give valid");
    }
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FullEventVerify);

// The non-crypto part alone, to see where the time goes.
void BM_PrepareOnly(benchmark::State& state) {
  const Fixture& f = GetFixture();
  for (auto _ : state) {
    absl::StatusOr<PreparedEvent> p = PrepareEvent(f.event_json, *f.room);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PrepareOnly);

// Remembers each benchmark's time per iteration to print the ratio.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Iteration && r.iterations > 0) {
        ns_[r.benchmark_name()] = r.GetAdjustedRealTime();
      }
    }
  }
  double ns(const std::string& name) const {
    auto it = ns_.find(name);
    return it == ns_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, double> ns_;
};

}  // namespace
}  // namespace keyverifier::core

int main(int argc, char** argv) {
  if (sodium_init() < 0) return 1;
  std::cout << "event size: " << keyverifier::core::GetFixture().event_json.size()
            << " bytes, signed bytes: "
            << keyverifier::core::GetFixture().signed_bytes.size() << "\n";
  benchmark::Initialize(&argc, argv);
  keyverifier::core::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  double bare = reporter.ns("BM_BareSodiumVerify");
  double full = reporter.ns("BM_FullEventVerify");
  double prep = reporter.ns("BM_PrepareOnly");
  if (bare > 0 && full > 0) {
    std::printf(
        "full path: %.0f ns/event, bare verify: %.0f ns, prepare: %.0f ns\n"
        "throughput ratio full/bare = %.3f (target >= 0.90)\n",
        full, bare, prep, bare / full);
  }
  benchmark::Shutdown();
  return 0;
}
