// NotaryFetcher: a server's keys through one trusted notary
// (/_matrix/key/v2/query), whose verify keys the operator pinned.
//
// Fetch uses GET /_matrix/key/v2/query/{serverName}; FetchMany the batch
// POST /_matrix/key/v2/query, `batch_size` servers per request, the requests
// in flight together. Each returned entry is validated on its own (the
// origin's self-signatures and the notary's signature with a pinned key); a
// bad entry is reported and never discards the good ones. Of several good
// entries for one server the one valid longest is used.
// Thread-safe; everything is borrowed.
#ifndef KEYVERIFIER_SERVICE_FETCH_NOTARY_FETCHER_H_
#define KEYVERIFIER_SERVICE_FETCH_NOTARY_FETCHER_H_

#include <map>
#include <string>
#include <vector>

#include "service/core/server_keys.h"
#include "service/fetch/key_fetcher.h"
#include "service/net/federation_client.h"

namespace keyverifier::fetch {

class NotaryFetcher final : public KeyFetcher {
 public:
  struct Options {
    // Servers per POST /_matrix/key/v2/query.
    size_t batch_size = 100;
    // Where a large answer's entries are checked, a slice per task, so
    // that their signatures are checked on several cores (a 1,000-server
    // answer carries 2,000 signatures). Null: on the thread the answer
    // arrives on (the fetch engine's).
    async::Executor* checker = nullptr;
    // Keys one entry may list (current and old together).
    size_t max_keys = core::kDefaultMaxKeysPerResponse;
  };
  NotaryFetcher(core::PinnedNotary notary, net::FederationClient& client, Options options)
      : notary_(std::move(notary)), client_(client), options_(options) {}
  NotaryFetcher(core::PinnedNotary notary, net::FederationClient& client)
      : NotaryFetcher(std::move(notary), client, Options()) {}

  const std::string& source() const override { return notary_.server_name.str(); }
  void Fetch(const KeyQuery& request, absl::Time deadline,
             async::Callback<core::ServerKeys> done) override;
  // An answer (or the reason for none) per server. Fails as a whole only if
  // the notary could not be asked at all.
  void FetchMany(std::vector<KeyQuery> requests, absl::Time deadline,
                 async::Callback<KeysByServer> done) override;
  absl::StatusOr<KeysByServer> FetchManyAndWait(std::vector<KeyQuery> requests,
                                                absl::Time deadline) {
    return async::Wait<KeysByServer>(
        [&](auto cb) { FetchMany(std::move(requests), deadline, std::move(cb)); });
  }

 private:
  void Ask(net::HttpRequest http_request, std::vector<KeyQuery> requests,
           absl::Time deadline, async::Callback<KeysByServer> done);
  void PostBatch(std::vector<KeyQuery> requests, absl::Time deadline,
                 async::Callback<KeysByServer> done);
  using Checked = std::vector<absl::StatusOr<core::ServerKeys>>;
  // Checks every entry (on options_.checker when it is worth it), then
  // calls `done` with the outcomes in entry order.
  void CheckEntries(std::vector<core::Value> entries,
                    absl::AnyInvocable<void(Checked)> done);
  // The best entry per asked server, or why there is none (servers the
  // notary answered for unasked are left out).
  KeysByServer Collect(Checked checked, const std::vector<KeyQuery>& requests) const;

  const core::PinnedNotary notary_;
  net::FederationClient& client_;
  const Options options_;
};

}  // namespace keyverifier::fetch

#endif  // KEYVERIFIER_SERVICE_FETCH_NOTARY_FETCHER_H_
