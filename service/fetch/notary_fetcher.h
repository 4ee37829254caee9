// NotaryFetcher: a server's keys through one trusted notary
// (/_matrix/key/v2/query), whose verify keys the operator pinned.
//
// Fetch uses GET /_matrix/key/v2/query/{serverName}; FetchMany the batch
// POST /_matrix/key/v2/query. Each returned entry is validated on its own
// (the origin's self-signatures and the notary's signature with a pinned
// key); a bad entry is reported and never discards the good ones. Of several
// good entries for one server the one valid longest is used.
// Thread-safe; everything is borrowed.
#ifndef KEYVERIFIER_SERVICE_FETCH_NOTARY_FETCHER_H_
#define KEYVERIFIER_SERVICE_FETCH_NOTARY_FETCHER_H_

#include <map>
#include <string>
#include <vector>

#include "service/core/server_keys.h"
#include "service/fetch/key_fetcher.h"
#include "service/net/discovery.h"
#include "service/net/http_client.h"

namespace keyverifier::fetch {

class NotaryFetcher final : public KeyFetcher {
 public:
  NotaryFetcher(core::PinnedNotary notary, net::ServerDiscovery& discovery,
                net::HttpClient& http)
      : notary_(std::move(notary)), discovery_(discovery), http_(http) {}

  const std::string& source() const override { return notary_.server_name; }
  absl::StatusOr<core::ServerKeys> Fetch(const KeyRequest& request,
                                         absl::Time deadline) override;
  // One POST for many servers; an answer (or the reason for none) per server.
  // Fails as a whole only if the notary could not be asked at all.
  absl::StatusOr<std::map<std::string, absl::StatusOr<core::ServerKeys>>> FetchMany(
      const std::vector<KeyRequest>& requests, absl::Time deadline);

 private:
  absl::StatusOr<std::map<std::string, absl::StatusOr<core::ServerKeys>>> Ask(
      net::HttpRequest http_request, const std::vector<KeyRequest>& requests,
      absl::Time deadline);

  const core::PinnedNotary notary_;
  net::ServerDiscovery& discovery_;
  net::HttpClient& http_;
};

}  // namespace keyverifier::fetch

#endif  // KEYVERIFIER_SERVICE_FETCH_NOTARY_FETCHER_H_
