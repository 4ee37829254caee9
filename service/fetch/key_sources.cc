#include "service/fetch/key_sources.h"

#include <algorithm>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/core/base64.h"

namespace keyverifier::fetch {
namespace {

// The verify keys of an answer, as one comparable string.
std::string KeySetOf(const core::ServerKeys& keys) {
  std::vector<std::string> parts;
  for (const core::VerifyKey& k : keys.verify_keys) {
    parts.push_back(absl::StrCat(k.key_id, "=",
                                 core::EncodeBase64Unpadded(core::AsStringView(k.public_key))));
  }
  std::sort(parts.begin(), parts.end());
  return absl::StrJoin(parts, ",");
}

std::string Shortfall(const core::ServerKeys& keys, const KeyRequest& request) {
  return absl::StrCat("valid until ", keys.valid_until_ts, ", keys ", KeySetOf(keys),
                      "; wanted ",
                      request.key_ids.empty() ? "any key" : absl::StrJoin(request.key_ids, ","),
                      " valid until ", request.minimum_valid_until_ts);
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeySources>> KeySources::Create(
    KeyFetcher* direct, std::vector<KeyFetcher*> notaries, Options options,
    const Clock& clock, observe::Observer& observer) {
  if (options.quorum < 1) return absl::InvalidArgumentError("quorum must be at least 1");
  if (options.order == Order::kDirectOnly) {
    if (direct == nullptr) return absl::InvalidArgumentError("direct only, but no direct fetcher");
    if (options.quorum > 1) {
      return absl::InvalidArgumentError("a quorum needs notaries; the order is direct only");
    }
  } else if (direct == nullptr && notaries.empty()) {
    return absl::InvalidArgumentError("no key source at all");
  }
  const int sources = static_cast<int>(notaries.size()) + (direct != nullptr ? 1 : 0);
  if (options.quorum > sources) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quorum ", options.quorum, " is more than the ", sources, " sources configured"));
  }
  return std::unique_ptr<KeySources>(
      new KeySources(direct, std::move(notaries), options, clock, observer));
}

KeySources::~KeySources() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* running) { return *running == 0; }, &running_));
}

KeySources::Answer KeySources::AskOne(KeyFetcher* f, const KeyRequest& request,
                                      absl::Time deadline) {
  const absl::Time start = clock_.Now();
  Answer a{f->source(), f->Fetch(request, deadline)};
  const char* kind = f == direct_ ? "origin" : "notary";
  const char* outcome = !a.keys.ok() ? "error" : Satisfies(*a.keys, request) ? "ok" : "unsatisfying";
  observer_.OnKeyFetch(kind, outcome, clock_.Now() - start);
  return a;
}

std::vector<KeySources::Answer> KeySources::AskConcurrently(
    const std::vector<KeyFetcher*>& fetchers, const KeyRequest& request,
    absl::Time deadline, const std::function<bool(const std::vector<Answer>&)>& enough) {
  if (fetchers.size() == 1) return {AskOne(fetchers[0], request, deadline)};
  struct Shared {
    absl::Mutex mu;
    std::vector<Answer> answers ABSL_GUARDED_BY(mu);
    size_t pending ABSL_GUARDED_BY(mu) = 0;
  };
  auto shared = std::make_shared<Shared>();
  {
    absl::MutexLock lock(&shared->mu);
    shared->pending = fetchers.size();
  }
  {
    absl::MutexLock lock(&mu_);
    running_ += static_cast<int>(fetchers.size());
  }
  for (KeyFetcher* f : fetchers) {
    std::thread([this, f, request, deadline, shared] {
      Answer a = AskOne(f, request, deadline);
      {
        absl::MutexLock lock(&shared->mu);
        shared->answers.push_back(std::move(a));
        --shared->pending;
      }
      absl::MutexLock lock(&mu_);
      --running_;
    }).detach();
  }
  absl::MutexLock lock(&shared->mu);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared->mu) {
    return shared->pending == 0 || enough(shared->answers);
  };
  // The fetchers honour the deadline themselves; the margin only guards
  // against one that does not.
  shared->mu.AwaitWithDeadline(absl::Condition(&done), deadline + absl::Seconds(1));
  return shared->answers;
}

absl::StatusOr<FetchResult> KeySources::Quorum(const KeyRequest& request,
                                               absl::Time deadline) {
  std::vector<KeyFetcher*> all = notaries_;
  if (direct_ != nullptr) all.push_back(direct_);
  const size_t quorum = static_cast<size_t>(options_.quorum);
  auto groups_of = [](const std::vector<Answer>& answers) {
    std::map<std::string, std::vector<const Answer*>> groups;
    for (const Answer& a : answers) {
      if (a.keys.ok()) groups[KeySetOf(*a.keys)].push_back(&a);
    }
    return groups;
  };
  std::vector<Answer> answers = AskConcurrently(
      all, request, deadline, [&](const std::vector<Answer>& so_far) {
        for (const auto& [set, members] : groups_of(so_far)) {
          if (members.size() >= quorum) return true;
        }
        return false;
      });
  FetchResult result;
  for (const Answer& a : answers) {
    if (!a.keys.ok()) result.failures.push_back(absl::StrCat(a.source, ": ", a.keys.status().message()));
  }
  auto groups = groups_of(answers);
  for (const auto& [set, members] : groups) {
    if (members.size() < quorum) continue;
    const Answer* best = members[0];
    for (const Answer* m : members) {
      result.sources.push_back(m->source);
      if (m->keys->valid_until_ts > best->keys->valid_until_ts) best = m;
    }
    result.keys = *best->keys;
    result.satisfies = Satisfies(result.keys, request);
    return result;
  }
  if (groups.size() > 1) {
    observer_.OnKeyDisagreement(request.server_name);
    std::vector<std::string> said;
    for (const auto& [set, members] : groups) {
      std::vector<std::string> who;
      for (const Answer* m : members) who.push_back(m->source);
      said.push_back(absl::StrCat(absl::StrJoin(who, ", "), " report ", set.empty() ? "no keys" : set));
    }
    return absl::AbortedError(absl::StrCat("sources disagree on the keys of ", request.server_name,
                                           " (quorum ", quorum, "): ", absl::StrJoin(said, "; ")));
  }
  size_t agreeing = groups.empty() ? 0 : groups.begin()->second.size();
  return absl::UnavailableError(absl::StrCat(
      "only ", agreeing, " of the ", quorum, " sources needed report keys for ",
      request.server_name,
      result.failures.empty() ? "" : absl::StrCat(": ", absl::StrJoin(result.failures, "; "))));
}

absl::StatusOr<FetchResult> KeySources::Fetch(const KeyRequest& request,
                                              absl::Time deadline) {
  if (options_.quorum > 1) return Quorum(request, deadline);

  std::vector<std::vector<KeyFetcher*>> stages;
  std::vector<KeyFetcher*> direct;
  if (direct_ != nullptr) direct.push_back(direct_);
  switch (options_.order) {
    case Order::kDirectFirst:
      stages = {direct, notaries_};
      break;
    case Order::kNotariesFirst:
      stages = {notaries_, direct};
      break;
    case Order::kDirectOnly:
      stages = {direct};
      break;
  }
  FetchResult best;
  bool have_best = false;
  bool deadline_hit = false;
  bool all_not_found = true;
  for (const std::vector<KeyFetcher*>& stage : stages) {
    if (stage.empty()) continue;
    std::vector<Answer> answers = AskConcurrently(
        stage, request, deadline, [&](const std::vector<Answer>& so_far) {
          return std::any_of(so_far.begin(), so_far.end(), [&](const Answer& a) {
            return a.keys.ok() && Satisfies(*a.keys, request);
          });
        });
    for (Answer& a : answers) {
      if (!a.keys.ok()) {
        deadline_hit |= absl::IsDeadlineExceeded(a.keys.status());
        all_not_found &= absl::IsNotFound(a.keys.status());
        best.failures.push_back(absl::StrCat(a.source, ": ", a.keys.status().message()));
        continue;
      }
      if (Satisfies(*a.keys, request)) {
        FetchResult r;
        r.keys = *std::move(a.keys);
        r.sources = {a.source};
        r.satisfies = true;
        r.failures = std::move(best.failures);
        return r;
      }
      best.failures.push_back(absl::StrCat(a.source, ": ", Shortfall(*a.keys, request)));
      if (!have_best || a.keys->valid_until_ts > best.keys.valid_until_ts) {
        best.keys = *a.keys;
        best.sources = {a.source};
        have_best = true;
      }
    }
  }
  if (have_best) return best;
  const std::string why = absl::StrCat("no source gave keys for ", request.server_name, ": ",
                                       absl::StrJoin(best.failures, "; "));
  if (deadline_hit) return absl::DeadlineExceededError(why);
  // Every source says the server does not exist (no such name, no address).
  if (all_not_found) return absl::NotFoundError(why);
  return absl::UnavailableError(why);
}

}  // namespace keyverifier::fetch
