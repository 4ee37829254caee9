#include "service/core/room_version.h"

#include "absl/strings/str_cat.h"

namespace keyverifier::core {
namespace {

constexpr NumberPolicy kOld = NumberPolicy::kLegacy;
constexpr NumberPolicy kNew = NumberPolicy::kStrict;
using F = EventIdFormat;
using R = RedactionRules;

constexpr RoomVersion kRoomVersions[] = {
    // id, event id, redaction, numbers, key validity, restricted joins
    {"1", F::kExplicit, R::kV1, kOld, false, false},
    {"2", F::kExplicit, R::kV1, kOld, false, false},
    {"3", F::kReferenceHash, R::kV1, kOld, false, false},
    {"4", F::kReferenceHashUrl, R::kV1, kOld, false, false},
    {"5", F::kReferenceHashUrl, R::kV1, kOld, true, false},
    {"6", F::kReferenceHashUrl, R::kV6, kNew, true, false},
    {"7", F::kReferenceHashUrl, R::kV6, kNew, true, false},
    {"8", F::kReferenceHashUrl, R::kV8, kNew, true, true},
    {"9", F::kReferenceHashUrl, R::kV9, kNew, true, true},
    {"10", F::kReferenceHashUrl, R::kV9, kNew, true, true},
    {"11", F::kReferenceHashUrl, R::kV11, kNew, true, true},
    {"12", F::kReferenceHashUrl, R::kV11, kNew, true, true},
};

}  // namespace

absl::StatusOr<const RoomVersion*> LookupRoomVersion(absl::string_view id) {
  for (const RoomVersion& v : kRoomVersions) {
    if (v.id == id) return &v;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported room version \"", id, "\" (supported: 1 to 12)"));
}

}  // namespace keyverifier::core
