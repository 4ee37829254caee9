#include "service/store/memory_key_store.h"

#include <algorithm>

#include "service/store/merge.h"

namespace keyverifier::store {

absl::StatusOr<std::unique_ptr<KeyStore>> MemoryKeyStore::Create() {
  return std::unique_ptr<KeyStore>(new MemoryKeyStore());
}

absl::StatusOr<WriteResult> MemoryKeyStore::StoreResponse(
    const core::ServerKeys& response, absl::string_view source,
    int64_t fetched_ts) {
  absl::MutexLock lock(&mu_);
  StoredState before;
  auto it = servers_.find(response.server_name);
  if (it != servers_.end()) {
    before.server = it->second.summary;
    for (const auto& [id, key] : it->second.keys) before.keys.push_back(key);
    auto r = it->second.responses.find(std::string(source));
    if (r != it->second.responses.end()) {
      before.response_fetched_ts = r->second.fetched_ts;
    }
  }
  absl::StatusOr<WritePlan> plan =
      PlanWrite(before, response, source, fetched_ts);
  if (!plan.ok()) return plan.status();
  // Nothing below can fail, so the write is all or nothing.
  Server& server = servers_[response.server_name];
  server.summary = plan->server;
  if (plan->result.response_stored) {
    server.responses[plan->response.source] = plan->response;
  }
  for (StoredKey& key : plan->keys) {
    std::string id = key.key.key_id;
    server.keys[id] = std::move(key);
  }
  return plan->result;
}

absl::StatusOr<std::vector<StoredKey>> MemoryKeyStore::GetKeys(
    absl::string_view server_name) {
  absl::MutexLock lock(&mu_);
  std::vector<StoredKey> out;
  auto it = servers_.find(server_name);
  if (it == servers_.end()) return out;
  for (const auto& [id, key] : it->second.keys) out.push_back(key);
  return out;
}

absl::StatusOr<std::vector<StoredResponse>> MemoryKeyStore::GetResponses(
    absl::string_view server_name) {
  absl::MutexLock lock(&mu_);
  std::vector<StoredResponse> out;
  auto it = servers_.find(server_name);
  if (it == servers_.end()) return out;
  for (const auto& [source, response] : it->second.responses) {
    out.push_back(response);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const StoredResponse& a, const StoredResponse& b) {
                     return a.fetched_ts > b.fetched_ts;
                   });
  return out;
}

absl::StatusOr<std::vector<ServerSummary>> MemoryKeyStore::ListServers(
    int64_t useful_until_before) {
  absl::MutexLock lock(&mu_);
  std::vector<ServerSummary> out;
  for (const auto& [name, server] : servers_) {
    if (server.summary.useful_until_ts < useful_until_before) {
      out.push_back(server.summary);
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const ServerSummary& a, const ServerSummary& b) {
                     return a.useful_until_ts < b.useful_until_ts;
                   });
  return out;
}

}  // namespace keyverifier::store
