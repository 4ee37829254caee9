// MemoryKeyStore: a KeyStore in process memory, for tests and as the
// reference the persistent stores are checked against. Nothing survives the
// object. Thread-safe (one mutex); a write is applied whole or not at all.
#ifndef KEYVERIFIER_SERVICE_STORE_MEMORY_KEY_STORE_H_
#define KEYVERIFIER_SERVICE_STORE_MEMORY_KEY_STORE_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "service/store/key_store.h"

namespace keyverifier::store {

class MemoryKeyStore final : public KeyStore {
 public:
  static absl::StatusOr<std::unique_ptr<KeyStore>> Create();

  absl::StatusOr<WriteResult> StoreResponse(const core::ServerKeys& response,
                                            absl::string_view source,
                                            int64_t fetched_ts) override;
  absl::StatusOr<std::vector<StoredKey>> GetKeys(
      absl::string_view server_name) override;
  absl::StatusOr<std::vector<StoredResponse>> GetResponses(
      absl::string_view server_name) override;
  absl::StatusOr<std::vector<ServerSummary>> ListServers(
      int64_t useful_until_before) override;
  absl::StatusOr<int> SchemaVersion() override { return kSchemaVersion; }

 private:
  MemoryKeyStore() = default;

  struct Server {
    ServerSummary summary;
    std::map<std::string, StoredResponse> responses;  // by source
    std::map<std::string, StoredKey> keys;            // by key id
  };

  absl::Mutex mu_;
  std::map<std::string, Server, std::less<>> servers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::store

#endif  // KEYVERIFIER_SERVICE_STORE_MEMORY_KEY_STORE_H_
