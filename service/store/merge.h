// The merge rule: how one key response changes what the store holds. Every
// KeyStore implementation reads the server's stored state, asks PlanWrite
// what to write, and writes the plan in one transaction, so the rule lives
// here once. Pure and thread-safe.
//
// Per key (server, key_id), "never forget a key":
//  - A key is never deleted. Keys a response no longer lists keep their last
//    known validity; previously current ones are reported as vanished.
//  - A key id is bound to the first public key seen for it (MSC4499): a
//    response giving other bytes is refused whole (FailedPreconditionError),
//    except that a binding only notaries vouched for (no response from the
//    origin itself listed it) is provisional, and the origin's own response
//    replaces it (WriteResult::rebound_keys).
//  - A response listing a key id both as current and as old (as notaries
//    have been seen to) gives one key: valid_until_ts from the one, expired_ts
//    from the other, so it is an old key (the parser has already refused
//    such a response if the two entries' public keys differ).
//  - valid_until_ts is the latest any response gave while listing the key in
//    verify_keys: a signed statement "valid until T" stays true, and a
//    notary's older cached copy must not shorten it.
//  - expired_ts is the earliest any response gave while listing the key in
//    old_verify_keys, and once set it stays: a key its server has retired is
//    not brought back as current by a stale copy that still lists it there.
//    Such a key is old (events before expired_ts only, no requests).
//  - first_seen_ts / last_seen_ts are the earliest / latest fetched_ts of the
//    responses listing the key; sources is the union of their sources.
// Per (server, source) the response fetched last is kept (ties: the newer
// write). Per server, useful_until_ts is the latest valid_until_ts of any
// response and last_fetched_ts the latest fetched_ts.
//
// Every key field is a min, max or union and the response kept per source is
// the one fetched last, so what is stored does not depend on the order in
// which responses arrive (replicas may write in any order); only which
// writes report a key as new or vanished does.
#ifndef KEYVERIFIER_SERVICE_STORE_MERGE_H_
#define KEYVERIFIER_SERVICE_STORE_MERGE_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/server_keys.h"
#include "service/store/key_store.h"

namespace keyverifier::store {

// What is stored for one server before a write.
struct StoredState {
  std::vector<StoredKey> keys;                // every key of the server
  std::optional<int64_t> response_fetched_ts;  // the source's stored response
  std::optional<ServerSummary> server;
};

// What to write, all in one transaction.
struct WritePlan {
  ServerSummary server;            // upsert
  StoredResponse response;        // upserted when result.response_stored
  std::vector<StoredKey> keys;     // the response's keys, merged; upsert each
  WriteResult result;
};

// Validates the write (ValidateWrite) and applies the merge rule.
absl::StatusOr<WritePlan> PlanWrite(const StoredState& before,
                                    const core::ServerKeys& response,
                                    absl::string_view source,
                                    int64_t fetched_ts);

}  // namespace keyverifier::store

#endif  // KEYVERIFIER_SERVICE_STORE_MERGE_H_
