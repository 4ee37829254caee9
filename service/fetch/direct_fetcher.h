// DirectFetcher: GET /_matrix/key/v2/server from the origin, through the
// federation client (discovery, endpoints in order, certificate policy and
// address filter included). The response must be for the server asked and
// pass the core's validation. Thread-safe; everything is borrowed.
#ifndef KEYVERIFIER_SERVICE_FETCH_DIRECT_FETCHER_H_
#define KEYVERIFIER_SERVICE_FETCH_DIRECT_FETCHER_H_

#include <string>

#include "service/fetch/key_fetcher.h"
#include "service/net/federation_client.h"

namespace keyverifier::fetch {

// The largest key response accepted.
inline constexpr size_t kMaxKeyResponseBytes = 256 * 1024;

class DirectFetcher final : public KeyFetcher {
 public:
  explicit DirectFetcher(net::FederationClient& client,
                         size_t max_keys = core::kDefaultMaxKeysPerResponse)
      : client_(client), max_keys_(max_keys) {}

  const std::string& source() const override { return source_; }
  void Fetch(const KeyQuery& request, absl::Time deadline,
             async::Callback<core::ServerKeys> done) override;
  // Every origin concurrently, as bulk requests (they yield connections to
  // single lookups).
  void FetchMany(std::vector<KeyQuery> requests, absl::Time deadline,
                 async::Callback<KeysByServer> done) override;

 private:
  void FetchOne(const KeyQuery& request, absl::Time deadline,
                net::FederationClient::Priority priority, async::Callback<core::ServerKeys> done);

  net::FederationClient& client_;
  const size_t max_keys_;
  const std::string source_ = "origin";
};

}  // namespace keyverifier::fetch

#endif  // KEYVERIFIER_SERVICE_FETCH_DIRECT_FETCHER_H_
