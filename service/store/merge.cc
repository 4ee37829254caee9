#include "service/store/merge.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/crypto.h"

namespace keyverifier::store {
namespace {

std::string KeyText(const core::Ed25519PublicKey& key) {
  return core::EncodeBase64Unpadded(core::AsStringView(key));
}

absl::Status KeyConflict(absl::string_view key_id, absl::string_view message) {
  absl::Status s = absl::FailedPreconditionError(message);
  s.SetPayload(kConflictingKeyId, absl::Cord(key_id));
  return s;
}

absl::StatusOr<StoredKey> MergeKey(const StoredKey* before,
                                   const std::string& server,
                                   const core::VerifyKey& incoming,
                                   absl::string_view source,
                                   int64_t fetched_ts, bool* rebound) {
  StoredKey merged;
  if (before == nullptr) {
    merged.server_name = server;
    merged.key.key_id = incoming.key_id;
    merged.key.public_key = incoming.public_key;
    merged.first_seen_ts = fetched_ts;
    merged.last_seen_ts = fetched_ts;
  } else if (before->key.public_key != incoming.public_key) {
    // MSC4499: a key id is bound to the first key seen for it. A binding
    // only notaries vouched for is provisional: the origin's own answer
    // replaces it. Anything else that disagrees is refused whole.
    const bool confirmed = std::binary_search(before->sources.begin(),
                                              before->sources.end(), server);
    if (confirmed || source != server) {
      return KeyConflict(incoming.key_id, absl::StrCat(
          "key ", incoming.key_id, " of ", server, " from ", source, ": public key ",
          KeyText(incoming.public_key), " differs from the stored ",
          KeyText(before->key.public_key), " (first seen at ", before->first_seen_ts,
          confirmed ? ", confirmed by the origin" : ", through notaries only; only the origin",
          confirmed ? "" : " itself can replace it", "); response refused"));
    }
    merged.server_name = server;
    merged.key.key_id = incoming.key_id;
    merged.key.public_key = incoming.public_key;
    merged.first_seen_ts = fetched_ts;
    merged.last_seen_ts = fetched_ts;
    *rebound = true;
  } else {
    merged = *before;
    merged.first_seen_ts = std::min(merged.first_seen_ts, fetched_ts);
    merged.last_seen_ts = std::max(merged.last_seen_ts, fetched_ts);
  }
  if (incoming.valid_until_ts.has_value()) {
    merged.key.valid_until_ts =
        merged.key.valid_until_ts.has_value()
            ? std::max(*merged.key.valid_until_ts, *incoming.valid_until_ts)
            : *incoming.valid_until_ts;
  }
  if (incoming.expired_ts.has_value()) {
    merged.key.expired_ts =
        merged.key.expired_ts.has_value()
            ? std::min(*merged.key.expired_ts, *incoming.expired_ts)
            : *incoming.expired_ts;
  }
  std::string src(source);
  if (!std::binary_search(merged.sources.begin(), merged.sources.end(), src)) {
    merged.sources.insert(
        std::lower_bound(merged.sources.begin(), merged.sources.end(), src),
        src);
  }
  return merged;
}

}  // namespace

absl::StatusOr<WritePlan> PlanWrite(const StoredState& before,
                                    const core::ServerKeys& response,
                                    absl::string_view source,
                                    int64_t fetched_ts) {
  if (absl::Status s = ValidateWrite(response, source, fetched_ts); !s.ok()) {
    return s;
  }
  const std::string& server = response.server_name;
  std::map<std::string, const StoredKey*> stored;
  for (const StoredKey& key : before.keys) stored[key.key.key_id] = &key;

  WritePlan plan;
  plan.server.server_name = server;
  plan.server.useful_until_ts = response.valid_until_ts;
  plan.server.last_fetched_ts = fetched_ts;
  if (before.server.has_value()) {
    plan.server.useful_until_ts =
        std::max(plan.server.useful_until_ts, before.server->useful_until_ts);
    plan.server.last_fetched_ts =
        std::max(plan.server.last_fetched_ts, before.server->last_fetched_ts);
  }

  plan.result.response_stored = !before.response_fetched_ts.has_value() ||
                               *before.response_fetched_ts <= fetched_ts;
  if (plan.result.response_stored) {
    plan.response.server_name = server;
    plan.response.source = std::string(source);
    plan.response.fetched_ts = fetched_ts;
    plan.response.valid_until_ts = response.valid_until_ts;
    plan.response.raw_json = response.raw_json;
  }

  std::set<std::string> listed;
  // One entry per key id: a key a response lists both as current and as
  // old (seen from notaries) is merged from both entries.
  std::map<std::string, StoredKey> merged_keys;
  for (const core::VerifyKey& key : response.AllKeys()) {
    listed.insert(key.key_id);
    const StoredKey* base = nullptr;
    if (auto m = merged_keys.find(key.key_id); m != merged_keys.end()) {
      base = &m->second;
    } else if (auto it = stored.find(key.key_id); it != stored.end()) {
      base = it->second;
    }
    bool rebound = false;
    absl::StatusOr<StoredKey> merged = MergeKey(base, server, key, source, fetched_ts, &rebound);
    if (!merged.ok()) return merged.status();
    if (rebound) plan.result.rebound_keys.push_back(key.key_id);
    if (base == nullptr) plan.result.new_keys.push_back(key.key_id);
    merged_keys.insert_or_assign(key.key_id, *std::move(merged));
  }
  for (auto& [id, key] : merged_keys) plan.keys.push_back(std::move(key));
  for (const auto& [key_id, key] : stored) {
    if (!key->is_old() && listed.count(key_id) == 0) {
      plan.result.vanished_keys.push_back(key_id);
    }
  }
  std::sort(plan.result.new_keys.begin(), plan.result.new_keys.end());
  // The server's keys afterwards: the stored ones the response left alone,
  // and the merged ones it listed.
  for (const StoredKey& key : before.keys) {
    if (listed.count(key.key.key_id) == 0) plan.result.keys.push_back(key);
  }
  plan.result.keys.insert(plan.result.keys.end(), plan.keys.begin(), plan.keys.end());
  std::sort(plan.result.keys.begin(), plan.result.keys.end(),
            [](const StoredKey& a, const StoredKey& b) { return a.key.key_id < b.key.key_id; });
  return plan;
}

}  // namespace keyverifier::store
