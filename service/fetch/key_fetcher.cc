#include "service/fetch/key_fetcher.h"

#include <algorithm>

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

}  // namespace keyverifier::fetch
