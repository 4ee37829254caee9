#include "service/core/redaction.h"

#include <algorithm>

#include "absl/types/span.h"

namespace keyverifier::core {
namespace {

using Keys = absl::Span<const absl::string_view>;

bool In(Keys names, absl::string_view key) {
  return std::find(names.begin(), names.end(), key) != names.end();
}

constexpr absl::string_view kTopLevel[] = {
    "event_id", "type",   "room_id",    "sender", "state_key",   "content",
    "hashes",   "depth",  "signatures", "prev_events", "auth_events",
    "origin_server_ts"};
// Dropped from the list by room version 11.
constexpr absl::string_view kTopLevelBeforeV11[] = {"prev_state", "origin",
                                                    "membership"};

constexpr absl::string_view kMember[] = {"membership"};
constexpr absl::string_view kMemberV9[] = {"membership",
                                           "join_authorised_via_users_server"};
constexpr absl::string_view kCreate[] = {"creator"};
constexpr absl::string_view kJoinRules[] = {"join_rule"};
constexpr absl::string_view kJoinRulesV8[] = {"join_rule", "allow"};
constexpr absl::string_view kPowerLevels[] = {
    "ban",    "events",        "events_default", "kick",
    "redact", "state_default", "users",          "users_default"};
constexpr absl::string_view kPowerLevelsV11[] = {
    "ban",    "events",        "events_default", "invite",       "kick",
    "redact", "state_default", "users",          "users_default"};
constexpr absl::string_view kAliases[] = {"aliases"};
constexpr absl::string_view kHistoryVisibility[] = {"history_visibility"};
constexpr absl::string_view kRedaction[] = {"redacts"};

// Keys of `content` kept for `type`; `all` is set when everything is kept.
Keys ContentKeys(RedactionRules rules, absl::string_view type, bool* all) {
  const bool v8 = rules >= RedactionRules::kV8;
  const bool v9 = rules >= RedactionRules::kV9;
  const bool v11 = rules == RedactionRules::kV11;
  *all = false;
  if (type == "m.room.member") return v9 ? Keys(kMemberV9) : Keys(kMember);
  if (type == "m.room.create") {
    *all = v11;
    return kCreate;
  }
  if (type == "m.room.join_rules") {
    return v8 ? Keys(kJoinRulesV8) : Keys(kJoinRules);
  }
  if (type == "m.room.power_levels") {
    return v11 ? Keys(kPowerLevelsV11) : Keys(kPowerLevels);
  }
  if (type == "m.room.aliases" && rules == RedactionRules::kV1) return kAliases;
  if (type == "m.room.history_visibility") return kHistoryVisibility;
  if (type == "m.room.redaction" && v11) return kRedaction;
  return {};
}

}  // namespace

bool RedactionPlan::KeepTopLevel(absl::string_view key) const {
  return In(kTopLevel, key) ||
         (rules != RedactionRules::kV11 && In(kTopLevelBeforeV11, key));
}

bool RedactionPlan::KeepContent(absl::string_view key) const {
  return keep_all_content || In(content_keys, key);
}

RedactionPlan PlanRedaction(RedactionRules rules, absl::string_view type) {
  RedactionPlan plan;
  plan.rules = rules;
  plan.content_keys = ContentKeys(rules, type, &plan.keep_all_content);
  plan.third_party_invite_signed_only =
      rules == RedactionRules::kV11 && type == "m.room.member";
  return plan;
}

void RedactEvent(RedactionRules rules, Value* event) {
  if (!event->is_object()) return;
  // Both arms are views: `cond ? std::string : ""` would yield a temporary
  // string and leave the view dangling.
  const Value* type_value = event->Find("type");
  const absl::string_view type = type_value && type_value->is_string()
                                     ? absl::string_view(type_value->string_value())
                                     : absl::string_view();
  const RedactionPlan plan = PlanRedaction(rules, type);
  event->RetainMembers(
      [&plan](absl::string_view key) { return plan.KeepTopLevel(key); });

  Value* content = event->FindMutable("content");
  if (content == nullptr || !content->is_object()) {
    event->Set("content", Value::Object());
    return;
  }
  if (plan.keep_all_content) return;

  Value third_party_invite;
  bool keep_tpi = false;
  if (plan.third_party_invite_signed_only) {
    Value* tpi = content->FindMutable("third_party_invite");
    if (tpi != nullptr && tpi->is_object()) {
      keep_tpi = true;
      third_party_invite = Value::Object();
      if (Value* s = tpi->FindMutable("signed")) {
        third_party_invite.Set("signed", std::move(*s));
      }
    }
  }
  content->RetainMembers(
      [&plan](absl::string_view key) { return plan.KeepContent(key); });
  if (keep_tpi) {
    content->Set("third_party_invite", std::move(third_party_invite));
  }
}

}  // namespace keyverifier::core
