// Notary: answers other servers' key queries (GET /_matrix/key/v2/query/
// {serverName}, POST /_matrix/key/v2/query) from what the service verified,
// and optionally serves its own identity's keys (GET /_matrix/key/v2/server).
//
// Each entry is the origin's own signed response as fetched from the origin
// (the bytes the store kept), countersigned with the notary's key. Answers
// learned from other notaries are never passed on, and the keyring given
// here must fetch from origins only (a notary does not forward queries to
// its own notaries). Freshness: with minimum_valid_until_ts, a cached answer
// that does not reach it makes the keyring ask the origin; without, an answer
// past half its lifetime does; when the origin cannot be reached, the last
// answer is served (old events stay checkable). The keyring's negative caching
// and new-name rate limit bound what queries can make us fetch, and its
// outbound filter decides which servers may be fetched at all.
//
// Asynchronous: Handle returns at once and responds from the keyring's
// callbacks. Thread-safe. The keyring, clock and observer are borrowed.
#ifndef KEYVERIFIER_SERVICE_NOTARY_NOTARY_H_
#define KEYVERIFIER_SERVICE_NOTARY_NOTARY_H_

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/async/callback.h"
#include "service/clock/clock.h"
#include "service/core/signing_key_file.h"
#include "service/keyring/keyring.h"
#include "service/notary/http_listener.h"
#include "service/notary/protocol.h"
#include "service/observe/observer.h"

namespace keyverifier::notary {

class Notary {
 public:
  struct Options {
    std::string server_name;  // the name the notary signs under
    QueryLimits limits;
    // How long a query may take; servers not answered by then are left out
    // of the answer (their fetches go on and answer later queries).
    absl::Duration query_timeout = absl::Seconds(10);
    // Serve GET /_matrix/key/v2/server for server_name, and answer queries
    // for server_name with it.
    bool serve_own_keys = false;
    // valid_until_ts of that response: this far ahead of when it was made;
    // a new one is made past half of it.
    absl::Duration own_keys_validity = absl::Hours(24);
  };

  // `key` signs under options.server_name.
  Notary(keyring::KeyRing& keyring, const Clock& clock, observe::Observer& observer,
         core::NamedSigningKey key, Options options);

  // An HTTP request to the notary listener.
  void Handle(HttpRequest request, Respond respond);

  // The answer body ({"server_keys": [...]}) for these queries.
  void Query(std::vector<ServerQuery> queries, async::Callback<std::string> done);

  // The notary's own signed key response.
  std::string OwnKeys();

 private:
  struct Pending;
  void Lookup(std::shared_ptr<Pending> pending, std::vector<size_t> which, bool again);
  void Finish(const std::shared_ptr<Pending>& pending);

  keyring::KeyRing& keyring_;
  const Clock& clock_;
  observe::Observer& observer_;
  const core::NamedSigningKey key_;
  const Options options_;

  absl::Mutex mu_;
  std::string own_keys_ ABSL_GUARDED_BY(mu_);
  absl::Time own_keys_renew_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace keyverifier::notary

#endif  // KEYVERIFIER_SERVICE_NOTARY_NOTARY_H_
