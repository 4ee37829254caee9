// A realistic signed m.room.message (about 1.2 KB) and the key that verifies
// it, shared by the benchmarks and the load generator.
#ifndef KEYVERIFIER_TESTS_BENCH_FIXTURE_H_
#define KEYVERIFIER_TESTS_BENCH_FIXTURE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "service/core/crypto.h"
#include "service/core/event_verifier.h"
#include "service/core/room_version.h"
#include "service/core/server_keys.h"
#include "service/core/verify_key.h"

namespace keyverifier::bench {

inline constexpr int64_t kNow = 1700000000000;
inline constexpr char kServer[] = "matrix.example.org";
inline constexpr char kKeyId[] = "ed25519:a_Bcde";

struct Fixture {
  std::string event_json;    // the signed event
  std::string signed_bytes;  // what its signature covers
  std::string signature;     // 64 bytes
  std::vector<core::VerifyKey> keys;
  const core::RoomVersion* room;
};

// Built once; thread-safe.
const Fixture& GetFixture();

// The baseline of every speed target: one bare libsodium
// crypto_sign_verify_detached of the fixture's signed bytes. True if it
// verifies.
bool BareVerify(const Fixture& f);

// A key lookup answering every server with the fixture's keys.
core::KeyLookup FixtureKeys(const Fixture& f);

// Everything the service does for the fixture's event, through the signing
// core; true if the verdict is valid.
bool FullPathValid(const Fixture& f, const core::KeyLookup& keys);

// The fixture's event (room version 10) as `server` would send it at
// `origin_server_ts`, signed with `key` under `key_id`: the same size and
// shape, for servers whose keys the benchmark does not hold.
std::string SignedEvent(const std::string& server, const std::string& key_id,
                        const core::Ed25519SigningKey& key, int64_t origin_server_ts);

// The fixture's keys as a key response, valid for a year, as the fetching
// keyring would store it (the raw JSON is of realistic size, unsigned).
core::ServerKeys FixtureKeyResponse();

}  // namespace keyverifier::bench

#endif  // KEYVERIFIER_TESTS_BENCH_FIXTURE_H_
