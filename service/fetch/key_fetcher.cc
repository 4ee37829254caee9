#include "service/fetch/key_fetcher.h"

#include <algorithm>
#include <memory>

namespace keyverifier::fetch {

bool Satisfies(const core::ServerKeys& keys, const KeyRequest& request) {
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

void KeyFetcher::FetchMany(std::vector<KeyRequest> requests, absl::Time deadline,
                           async::Callback<KeysByServer> done) {
  auto names = std::make_shared<std::vector<std::string>>();
  for (const KeyRequest& r : requests) names->push_back(r.server_name);
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
  for (size_t i = 0; i < requests.size(); ++i) {
    Fetch(requests[i], deadline, fanin->Slot(i));
  }
}

}  // namespace keyverifier::fetch
