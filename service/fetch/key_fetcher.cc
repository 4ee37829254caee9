#include "service/fetch/key_fetcher.h"

#include <algorithm>
#include <functional>
#include <memory>

namespace keyverifier::fetch {

bool Satisfies(const core::ServerKeys& keys, const KeyQuery& request) {
  if (keys.valid_until_ts < request.minimum_valid_until_ts) return false;
  for (const std::string& id : request.key_ids) {
    auto has = [&](const std::vector<core::VerifyKey>& list) {
      return std::any_of(list.begin(), list.end(),
                         [&](const core::VerifyKey& k) { return k.key_id == id; });
    };
    if (!has(keys.verify_keys) && !has(keys.old_verify_keys)) return false;
  }
  return true;
}

void KeyFetcher::FetchMany(std::vector<KeyQuery> requests, absl::Time deadline,
                           async::Callback<KeysByServer> done) {
  FetchEach(std::move(requests), std::move(done),
            [this, deadline](const KeyQuery& r, async::Callback<core::ServerKeys> one) {
              Fetch(r, deadline, std::move(one));
            });
}

void KeyFetcher::FetchEach(
    std::vector<KeyQuery> requests, async::Callback<KeysByServer> done,
    const std::function<void(const KeyQuery&, async::Callback<core::ServerKeys>)>& fetch) {
  auto names = std::make_shared<std::vector<core::ServerName>>();
  for (const KeyQuery& r : requests) names->push_back(r.server_name);
  auto fanin = async::Fanin<core::ServerKeys>::Create(
      requests.size(),
      [names, done = std::move(done)](
          std::vector<absl::StatusOr<core::ServerKeys>> results) mutable {
        KeysByServer out;
        for (size_t i = 0; i < results.size(); ++i) {
          out.insert_or_assign((*names)[i], std::move(results[i]));
        }
        done(std::move(out));
      });
  for (size_t i = 0; i < requests.size(); ++i) fetch(requests[i], fanin->Slot(i));
}

}  // namespace keyverifier::fetch
