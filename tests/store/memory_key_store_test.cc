#include "service/store/memory_key_store.h"

#include "gtest/gtest.h"
#include "tests/store/key_store_conformance.h"

namespace keyverifier::store::testing {
namespace {

class MemoryFactory {
 public:
  static constexpr bool kPersistent = false;
  static constexpr bool kShared = false;
  absl::StatusOr<std::unique_ptr<KeyStore>> Open() {
    return MemoryKeyStore::Create();
  }
  absl::Status FailWritesOfKey(const std::string&) {
    return absl::UnimplementedError(
        "the memory store applies a checked plan that cannot fail");
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, KeyStoreConformance, MemoryFactory);

}  // namespace
}  // namespace keyverifier::store::testing
