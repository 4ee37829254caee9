// KeyFetcher: one source of a remote server's signing keys: the origin
// itself (DirectFetcher) or one trusted notary (NotaryFetcher).
//
// A fetcher returns the validated key response it got (self-signatures and,
// for notaries, the notary's signature already checked by the core); whether
// that answer is good enough for the request is decided by the caller
// (KeySources). Asynchronous: the callback runs once, on the thread that
// completed the fetch. Implementations are thread-safe. Errors: UnavailableError
// when the source could not be reached or served nothing usable (the message
// says what), PermissionDeniedError when the address filter or certificate
// policy refused the connection, DeadlineExceededError, CancelledError
// (shutdown).
#ifndef KEYVERIFIER_SERVICE_FETCH_KEY_FETCHER_H_
#define KEYVERIFIER_SERVICE_FETCH_KEY_FETCHER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/async/callback.h"
#include "service/core/server_keys.h"
#include "service/fetch/key_query.h"

namespace keyverifier::fetch {


// Whether `keys` answers `request`: every wanted key id is there (current or
// old) and the response is valid until at least the minimum.
bool Satisfies(const core::ServerKeys& keys, const KeyQuery& request);

// One answer per server asked (keyed by the name asked); the whole fails only
// if the source could not be asked at all.
using KeysByServer = std::map<core::ServerName, absl::StatusOr<core::ServerKeys>>;

class KeyFetcher {
 public:
  virtual ~KeyFetcher() = default;
  // "origin", or the notary's server name.
  virtual const std::string& source() const = 0;
  virtual void Fetch(const KeyQuery& request, absl::Time deadline,
                     async::Callback<core::ServerKeys> done) = 0;
  // Many servers at once. By default every request is fetched concurrently
  // on its own; a notary sends them in batches.
  virtual void FetchMany(std::vector<KeyQuery> requests, absl::Time deadline,
                         async::Callback<KeysByServer> done);

  absl::StatusOr<core::ServerKeys> FetchAndWait(const KeyQuery& request,
                                                absl::Time deadline) {
    return async::Wait<core::ServerKeys>(
        [&](auto cb) { Fetch(request, deadline, std::move(cb)); });
  }

 protected:
  // Every request through `fetch` at once, the answers joined per server.
  static void FetchEach(
      std::vector<KeyQuery> requests, async::Callback<KeysByServer> done,
      const std::function<void(const KeyQuery&, async::Callback<core::ServerKeys>)>& fetch);
};

}  // namespace keyverifier::fetch

#endif  // KEYVERIFIER_SERVICE_FETCH_KEY_FETCHER_H_
