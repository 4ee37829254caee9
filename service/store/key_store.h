// KeyStore: what the keyring has learnt about remote servers' signing keys,
// kept across restarts (and, for PostgreSQL, shared between replicas).
//
// A write is one signed key response as received, with its source (the origin
// itself, or the notary that relayed it) and when it was fetched. The store
// keeps the latest response per (server, source) and merges every key of it
// into a per-key record that is never deleted (see merge.h for the rule).
// The store does not check signatures: callers store only responses that
// core::ParseServerKeys accepted.
//
// Time is passed in (Matrix milliseconds); no implementation reads a clock.
//
// Thread-safety: every implementation may be called from many threads at
// once. Ownership: a store owns its connection or file handle; destroying it
// closes them. Writes are transactional: a write that fails changes nothing.
//
// Errors: InvalidArgumentError for unusable input (naming the server, source
// or key id), FailedPreconditionError when a response contradicts what is
// stored (a key id whose public key changed), InternalError/UnavailableError
// for storage failures (naming the statement or step that failed).
#ifndef KEYVERIFIER_SERVICE_STORE_KEY_STORE_H_
#define KEYVERIFIER_SERVICE_STORE_KEY_STORE_H_

#include <cstdint>
#include <limits>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/server_keys.h"
#include "service/core/verify_key.h"

namespace keyverifier::store {

// One signed key response, as stored.
struct StoredResponse {
  std::string server_name;
  std::string source;  // the origin's own name, or the notary's
  int64_t fetched_ts = 0;
  int64_t valid_until_ts = 0;
  std::string raw_json;  // the bytes as received

  bool operator==(const StoredResponse& o) const {
    return server_name == o.server_name && source == o.source &&
           fetched_ts == o.fetched_ts && valid_until_ts == o.valid_until_ts &&
           raw_json == o.raw_json;
  }
};

// Everything known about one key of one server.
struct StoredKey {
  std::string server_name;
  // expired_ts set: an old key (only for events sent before it); its
  // valid_until_ts, if set, is the last validity it had as a current key.
  // expired_ts unset: a current key, valid_until_ts set.
  core::VerifyKey key;
  int64_t first_seen_ts = 0;  // earliest fetched_ts of a response carrying it
  int64_t last_seen_ts = 0;   // latest fetched_ts of a response carrying it
  std::vector<std::string> sources;  // sorted, unique

  bool is_old() const { return key.expired_ts.has_value(); }
};

// The payload (type URL) naming the key id of the FailedPreconditionError
// with which a write refuses a response that gives a bound key id another
// key.
inline constexpr absl::string_view kConflictingKeyId = "keyverifier.store/conflicting-key-id";

// What a write changed, for the caller to log and count.
struct WriteResult {
  // Key ids stored for the first time.
  std::vector<std::string> new_keys;
  // Key ids that were current keys before this write and that the response
  // lists neither in verify_keys nor in old_verify_keys. They are kept, with
  // their last known validity.
  std::vector<std::string> vanished_keys;
  // Key ids whose stored key only notaries had vouched for, and which the
  // origin's own response bound to another key (MSC4499: the provisional
  // binding is replaced).
  std::vector<std::string> rebound_keys;
  // Whether the response replaced the stored one of its (server, source);
  // false when a response fetched later was already stored.
  bool response_stored = false;
  // Every key of the server after the write, sorted by key id: what GetKeys
  // reads once the write is committed (unless another write came between),
  // so a caller need not read it back.
  std::vector<StoredKey> keys;
};

// A server the store knows, for a refresher choosing what to fetch again.
struct ServerSummary {
  std::string server_name;
  // The latest valid_until_ts any response for the server gave: after it no
  // key of the server is known to be current.
  int64_t useful_until_ts = 0;
  int64_t last_fetched_ts = 0;

  bool operator==(const ServerSummary& o) const {
    return server_name == o.server_name &&
           useful_until_ts == o.useful_until_ts &&
           last_fetched_ts == o.last_fetched_ts;
  }
};

// The schema version this code writes; older stores are migrated at Create.
inline constexpr int kSchemaVersion = 3;

// Where a server's fetch stands among the processes sharing the store.
enum class FetchClaim {
  kMine,    // this holder took the lease: fetch it
  kHeld,    // another holder's lease runs: wait for its result
  kDone,    // another holder's fetch finished since `since_ts`: read the store
  kFailed,  // ... and failed: do not fetch again now
};

// One response of a batch write: what StoreResponse takes.
struct ResponseWrite {
  const core::ServerKeys* response = nullptr;  // borrowed for the call
  std::string source;
};

class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // Stores several responses fetched at `fetched_ts`, each checked and
  // merged on its own exactly as StoreResponse would, in one transaction
  // where the store has them (a batch of cold servers costs one commit, not
  // one each). A response the checks or the merge rule refuse gets its own
  // error and the others are stored; a failure of the storage itself fails
  // every response of the batch. One result per write, in order. The
  // default stores them one by one.
  virtual std::vector<absl::StatusOr<WriteResult>> StoreResponses(
      const std::vector<ResponseWrite>& writes, int64_t fetched_ts) {
    std::vector<absl::StatusOr<WriteResult>> out;
    out.reserve(writes.size());
    for (const ResponseWrite& w : writes) {
      out.push_back(StoreResponse(*w.response, w.source, fetched_ts));
    }
    return out;
  }

  // Stores `response` (as parsed from `response.raw_json`) received from
  // `source` at `fetched_ts` and merges its keys.
  virtual absl::StatusOr<WriteResult> StoreResponse(
      const core::ServerKeys& response, absl::string_view source,
      int64_t fetched_ts) = 0;

  // Every key known for the server, current and old, sorted by key id.
  // Empty if the server is unknown.
  virtual absl::StatusOr<std::vector<StoredKey>> GetKeys(
      absl::string_view server_name) = 0;

  // The latest response of each source for the server, most recently
  // fetched first (ties by source). Empty if the server is unknown.
  virtual absl::StatusOr<std::vector<StoredResponse>> GetResponses(
      absl::string_view server_name) = 0;

  // Servers whose useful_until_ts is before `useful_until_before`, earliest
  // first (ties by name). The default lists every server.
  virtual absl::StatusOr<std::vector<ServerSummary>> ListServers(
      int64_t useful_until_before = std::numeric_limits<int64_t>::max()) = 0;

  // The schema version of the underlying storage.
  virtual absl::StatusOr<int> SchemaVersion() = 0;

  // Fetch leases, so that processes sharing the store (replicas on one
  // database) fetch each server once. For every server: kMine when no lease
  // of another holder runs at `now_ts` and no fetch of it finished since
  // `since_ts` (this holder's lease then runs until `until_ts`); else what
  // the other holder's lease says. A holder that dies holding a lease loses
  // it at its expiry. The default, for a store no other process shares,
  // gives every server to the caller.
  virtual absl::StatusOr<std::vector<FetchClaim>> ClaimFetches(
      const std::vector<std::string>& servers, absl::string_view holder, int64_t since_ts,
      int64_t now_ts, int64_t until_ts) {
    return std::vector<FetchClaim>(servers.size(), FetchClaim::kMine);
  }
  // Calls `changed` with the servers whose keys another process sharing the
  // store wrote, soon after each such write commits (PostgreSQL:
  // LISTEN/NOTIFY), on a thread of the store's; this store's own writes are
  // not reported. `key` names the watcher; a null `changed` removes it
  // (after which it is not called again). The default, for a store no other
  // process shares, never calls it.
  using ChangedServers = std::function<void(const std::vector<std::string>&)>;
  virtual void WatchChanges(const void* key, ChangedServers changed) {}

  // Ends this holder's leases: each server's fetch finished at `now_ts`,
  // and whether it succeeded.
  virtual absl::Status ReleaseFetches(const std::vector<std::pair<std::string, bool>>& done,
                                      absl::string_view holder, int64_t now_ts) {
    return absl::OkStatus();
  }
};

// Checks a write before any storage is touched: the server and source are
// server names, fetched_ts >= 0, the raw JSON is present, there is at least
// one current key, every key id is a valid ed25519 key id listed once, current
// keys carry valid_until_ts and old keys expired_ts.
absl::Status ValidateWrite(const core::ServerKeys& response,
                           absl::string_view source, int64_t fetched_ts);

}  // namespace keyverifier::store

#endif  // KEYVERIFIER_SERVICE_STORE_KEY_STORE_H_
