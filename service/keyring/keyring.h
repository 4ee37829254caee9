// KeyRing: where the service layer gets a remote server's verify keys.
//
// Implementations decide where keys come from (memory, the persistent store,
// the origin, notaries); callers only say what they need. Asynchronous: a
// lookup returns at once and its callback runs exactly once (inline when the
// answer is at hand, else on the thread that obtained it); no caller's thread
// waits for a fetch. Thread-safe: every implementation may be called from
// many threads at once.
//
// Errors: NotFoundError when no key for the server could be obtained,
// UnavailableError when sources failed, DeadlineExceededError when `deadline`
// passed first (a fetch under way goes on and answers later callers). The
// query's server name is already valid (parsed where it entered).
#ifndef KEYVERIFIER_SERVICE_KEYRING_KEYRING_H_
#define KEYVERIFIER_SERVICE_KEYRING_KEYRING_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/async/callback.h"
#include "service/core/verify_key.h"
#include "service/fetch/key_query.h"
#include "service/store/key_store.h"

namespace keyverifier::keyring {

using KeyQuery = fetch::KeyQuery;

struct KeySource {
  enum class Kind { kCache, kOrigin, kNotary };
  Kind kind = Kind::kCache;
  std::string notary;  // set for kNotary
};

struct KeyResult {
  std::string server_name;
  std::vector<core::VerifyKey> verify_keys;      // current keys
  std::vector<core::VerifyKey> old_verify_keys;  // old keys (expired_ts set)
  KeySource source;
  // The signed responses behind the keys, as received, one per source (the
  // origin's own, each notary's), with when each was fetched.
  std::vector<store::StoredResponse> responses;

  // Current then old keys, for signature checks.
  std::vector<core::VerifyKey> AllKeys() const {
    std::vector<core::VerifyKey> all = verify_keys;
    all.insert(all.end(), old_verify_keys.begin(), old_verify_keys.end());
    return all;
  }
  // The same, moving the keys out.
  std::vector<core::VerifyKey> TakeAllKeys() && {
    std::vector<core::VerifyKey> all = std::move(verify_keys);
    all.insert(all.end(), std::make_move_iterator(old_verify_keys.begin()),
               std::make_move_iterator(old_verify_keys.end()));
    return all;
  }
};

// Whether known keys answer `query`: every wanted key id is there, and each
// wanted current key (no expired_ts; old keys stay usable for events before
// their expiry) is usable (core::UsableUntil) until at least
// minimum_valid_until_ts; with no key ids, some current key is. `key_of`
// gives the core::VerifyKey of an element, `confirmed_of` when the last
// response listing it was fetched (for the 7-day cap).
template <typename Keys, typename KeyOf, typename ConfirmedOf>
bool KeysAnswer(const Keys& keys, const KeyQuery& query, KeyOf key_of, ConfirmedOf confirmed_of) {
  auto current_ok = [&](const auto& element) {
    const core::VerifyKey& k = key_of(element);
    return !k.expired_ts &&
           core::UsableUntil(k, confirmed_of(element)).value_or(0) >= query.minimum_valid_until_ts;
  };
  if (query.key_ids.empty()) return std::any_of(keys.begin(), keys.end(), current_ok);
  for (const std::string& id : query.key_ids) {
    auto it = std::find_if(keys.begin(), keys.end(),
                           [&](const auto& k) { return key_of(k).key_id == id; });
    if (it == keys.end()) return false;
    if (!key_of(*it).expired_ts && !current_ok(*it)) return false;
  }
  return true;
}

class KeyRing {
 public:
  using ManyDone = absl::AnyInvocable<void(std::vector<absl::StatusOr<KeyResult>>)>;

  virtual ~KeyRing() = default;
  virtual void GetKeys(const KeyQuery& query, absl::Time deadline,
                       async::Callback<KeyResult> done) = 0;
  // Called once per query with the query's index and its answer, from any
  // thread, possibly from several at once.
  using EachDone = std::function<void(size_t, absl::StatusOr<KeyResult>)>;
  // Several queries at once (a batch of events), each answered as soon as
  // its keys are in, so that a caller can start on the first servers' events
  // while others are still being fetched. Keyrings that fetch ask their
  // sources for all of them together.
  virtual void GetKeysEach(std::vector<KeyQuery> queries, absl::Time deadline,
                           std::shared_ptr<const EachDone> each) {
    for (size_t i = 0; i < queries.size(); ++i) {
      GetKeys(queries[i], deadline,
              [each, i](absl::StatusOr<KeyResult> r) { (*each)(i, std::move(r)); });
    }
  }
  // The same, with one callback: one result per query, in order.
  void GetKeysMany(std::vector<KeyQuery> queries, absl::Time deadline, ManyDone done) {
    auto fanin = async::Fanin<KeyResult>::Create(queries.size(), std::move(done));
    GetKeysEach(std::move(queries), deadline,
                std::make_shared<const EachDone>([fanin](size_t i, absl::StatusOr<KeyResult> r) {
                  fanin->Slot(i)(std::move(r));
                }));
  }
  // Blocking form, for tools and tests.
  absl::StatusOr<KeyResult> GetKeysAndWait(const KeyQuery& query, absl::Time deadline) {
    return async::Wait<KeyResult>([&](auto cb) { GetKeys(query, deadline, std::move(cb)); });
  }
  // The answer GetKeys would give, if it is already in memory; never blocks
  // on a store or the network. nullopt (the default) sends the caller down
  // the slow path (GetKeys on a worker thread).
  virtual std::optional<KeyResult> TryGetKeysFromMemory(const KeyQuery& query) {
    return std::nullopt;
  }
};

}  // namespace keyverifier::keyring

#endif  // KEYVERIFIER_SERVICE_KEYRING_KEYRING_H_
