#include "service/fetch/key_sources.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>

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

std::string Shortfall(const core::ServerKeys& keys, const KeyQuery& request) {
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

void KeySources::Report(const KeyFetcher* f, const absl::StatusOr<core::ServerKeys>& keys,
                        const KeyQuery& request, absl::Duration took) {
  const char* kind = f == direct_ ? "origin" : "notary";
  const char* outcome = !keys.ok() ? "error" : Satisfies(*keys, request) ? "ok" : "unsatisfying";
  observer_.OnKeyFetch(kind, outcome, took);
}

std::vector<std::vector<KeyFetcher*>> KeySources::Stages() const {
  std::vector<KeyFetcher*> direct;
  if (direct_ != nullptr) direct.push_back(direct_);
  switch (options_.order) {
    case Order::kDirectFirst:
      return {direct, notaries_};
    case Order::kNotariesFirst:
      return {notaries_, direct};
    case Order::kDirectOnly:
      return {direct};
  }
  return {direct};
}

// A FetchMany in progress: what each server has had so far.
struct KeySources::Batch {
  struct Progress {
    explicit Progress(KeyQuery r) : request(std::move(r)) {}
    KeyQuery request;
    FetchResult best;
    bool have_best = false;
    bool deadline_hit = false;
    bool all_not_found = true;
    std::optional<absl::StatusOr<FetchResult>> result;  // set once settled
  };
  absl::Time deadline;
  async::Callback<ResultsByServer> done;
  absl::Mutex mu;
  std::map<core::ServerName, Progress> servers ABSL_GUARDED_BY(mu);
  // The stage under way, and how many of its sources have not answered.
  size_t stage ABSL_GUARDED_BY(mu) = 0;
  size_t stage_pending ABSL_GUARDED_BY(mu) = 0;
  bool stage_over ABSL_GUARDED_BY(mu) = false;
};

void KeySources::RunStage(std::shared_ptr<Batch> batch, size_t stage) {
  const std::vector<std::vector<KeyFetcher*>> stages = Stages();
  while (stage < stages.size() && stages[stage].empty()) ++stage;
  std::vector<KeyQuery> open;
  {
    absl::MutexLock lock(&batch->mu);
    for (auto& [server, p] : batch->servers) {
      if (!p.result) open.push_back(p.request);
    }
    if (stage >= stages.size() || open.empty()) {
      // Settle what is left: the best answer there was, or why there was none.
      for (auto& [server, p] : batch->servers) {
        if (p.result) continue;
        if (p.have_best) {
          p.result.emplace(std::move(p.best));
          continue;
        }
        const std::string why = absl::StrCat("no source gave keys for ", server.str(), ": ",
                                             absl::StrJoin(p.best.failures, "; "));
        if (p.deadline_hit) {
          p.result.emplace(absl::DeadlineExceededError(why));
        } else if (p.all_not_found) {
          // Every source says the server does not exist (no such name, no address).
          p.result.emplace(absl::NotFoundError(why));
        } else {
          p.result.emplace(absl::UnavailableError(why));
        }
      }
    } else {
      batch->stage = stage;
      batch->stage_pending = stages[stage].size();
      batch->stage_over = false;
    }
  }
  if (stage >= stages.size() || open.empty()) {
    ResultsByServer out;
    {
      absl::MutexLock lock(&batch->mu);
      for (auto& [server, p] : batch->servers) out.emplace(server, *std::move(p.result));
    }
    batch->done(std::move(out));
    return;
  }
  const absl::Time start = clock_.Now();
  auto asked = std::make_shared<std::set<core::ServerName>>();
  for (const KeyQuery& r : open) asked->insert(r.server_name);
  for (KeyFetcher* f : stages[stage]) {
    // One answer per server from this source: merge it; the stage ends when
    // every server is settled or every source has answered.
    auto merge = [this, batch, f, stage, start, asked](absl::StatusOr<KeysByServer> answers) {
      const absl::Duration took = clock_.Now() - start;
      bool advance = false;
      {
        absl::MutexLock lock(&batch->mu);
        for (auto& [server, p] : batch->servers) {
          if (asked->count(server) == 0) continue;  // not part of this stage
          absl::StatusOr<core::ServerKeys> keys = absl::UnavailableError("not asked");
          if (!answers.ok()) {
            keys = answers.status();
          } else if (auto it = answers->find(server); it != answers->end()) {
            keys = std::move(it->second);
          } else {
            continue;  // not part of this source's request
          }
          Report(f, keys, p.request, took);  // counted, even when too late
          if (p.result || batch->stage_over || batch->stage != stage) continue;
          if (!keys.ok()) {
            p.deadline_hit |= absl::IsDeadlineExceeded(keys.status());
            p.all_not_found &= absl::IsNotFound(keys.status());
            p.best.failures.push_back(absl::StrCat(f->source(), ": ", keys.status().message()));
            continue;
          }
          if (Satisfies(*keys, p.request)) {
            FetchResult r;
            r.keys = *std::move(keys);
            r.sources = {f->source()};
            r.satisfies = true;
            r.failures = std::move(p.best.failures);
            p.result.emplace(std::move(r));
            continue;
          }
          p.all_not_found = false;
          p.best.failures.push_back(absl::StrCat(f->source(), ": ", Shortfall(*keys, p.request)));
          if (!p.have_best || keys->valid_until_ts > p.best.keys.valid_until_ts) {
            p.best.keys = *std::move(keys);
            p.best.sources = {f->source()};
            p.have_best = true;
          }
        }
        if (batch->stage_over || batch->stage != stage) return;
        --batch->stage_pending;
        const bool all_settled = std::all_of(batch->servers.begin(), batch->servers.end(),
                                             [](const auto& e) { return e.second.result.has_value(); });
        if (batch->stage_pending == 0 || all_settled) {
          batch->stage_over = true;
          advance = true;
        }
      }
      if (advance) RunStage(batch, stage + 1);
    };
    if (open.size() == 1) {
      const core::ServerName server = open[0].server_name;
      f->Fetch(open[0], batch->deadline,
               [merge = std::move(merge), server](absl::StatusOr<core::ServerKeys> keys) mutable {
                 KeysByServer one;
                 one.emplace(server, std::move(keys));
                 merge(std::move(one));
               });
    } else {
      f->FetchMany(open, batch->deadline, std::move(merge));
    }
  }
}

// Quorum: every source asked at once; done as soon as `quorum` of them agree.
struct KeySources::QuorumRun {
  explicit QuorumRun(KeyQuery r) : request(std::move(r)) {}
  KeyQuery request;
  size_t quorum = 1;
  size_t sources = 0;
  async::Callback<FetchResult> done;
  absl::Mutex mu;
  std::vector<std::pair<std::string, absl::StatusOr<core::ServerKeys>>> answers ABSL_GUARDED_BY(mu);
  bool finished ABSL_GUARDED_BY(mu) = false;
};

namespace {

using Answers = std::vector<std::pair<std::string, absl::StatusOr<core::ServerKeys>>>;

std::map<std::string, std::vector<const std::pair<std::string, absl::StatusOr<core::ServerKeys>>*>>
GroupsOf(const Answers& answers) {
  std::map<std::string,
           std::vector<const std::pair<std::string, absl::StatusOr<core::ServerKeys>>*>>
      groups;
  for (const auto& a : answers) {
    if (a.second.ok()) groups[KeySetOf(*a.second)].push_back(&a);
  }
  return groups;
}

}  // namespace

void KeySources::Quorum(const KeyQuery& request, absl::Time deadline,
                        async::Callback<FetchResult> done) {
  std::vector<KeyFetcher*> all = notaries_;
  if (direct_ != nullptr) all.push_back(direct_);
  auto run = std::make_shared<QuorumRun>(request);
  run->quorum = static_cast<size_t>(options_.quorum);
  run->sources = all.size();
  run->done = std::move(done);
  const absl::Time start = clock_.Now();
  for (KeyFetcher* f : all) {
    f->Fetch(request, deadline, [this, run, f, start](absl::StatusOr<core::ServerKeys> keys) {
      Report(f, keys, run->request, clock_.Now() - start);
      Answers answers;
      {
        absl::MutexLock lock(&run->mu);
        if (run->finished) return;
        run->answers.emplace_back(f->source(), std::move(keys));
        bool reached = false;
        for (const auto& [set, members] : GroupsOf(run->answers)) {
          reached |= members.size() >= run->quorum;
        }
        if (!reached && run->answers.size() < run->sources) return;
        run->finished = true;
        answers = std::move(run->answers);
      }
      const KeyQuery& request = run->request;
      const size_t quorum = run->quorum;
      FetchResult result;
      for (const auto& [source, keys] : answers) {
        if (!keys.ok()) result.failures.push_back(absl::StrCat(source, ": ", keys.status().message()));
      }
      auto groups = GroupsOf(answers);
      for (const auto& [set, members] : groups) {
        if (members.size() < quorum) continue;
        const auto* best = members[0];
        for (const auto* m : members) {
          result.sources.push_back(m->first);
          if (m->second->valid_until_ts > best->second->valid_until_ts) best = m;
        }
        result.keys = *best->second;
        result.satisfies = Satisfies(result.keys, request);
        return run->done(std::move(result));
      }
      if (groups.size() > 1) {
        observer_.OnKeyDisagreement(request.server_name.view());
        std::vector<std::string> said;
        for (const auto& [set, members] : groups) {
          std::vector<std::string> who;
          for (const auto* m : members) who.push_back(m->first);
          said.push_back(absl::StrCat(absl::StrJoin(who, ", "), " report ",
                                      set.empty() ? "no keys" : set));
        }
        return run->done(absl::AbortedError(
            absl::StrCat("sources disagree on the keys of ", request.server_name.str(), " (quorum ",
                         quorum, "): ", absl::StrJoin(said, "; "))));
      }
      size_t agreeing = groups.empty() ? 0 : groups.begin()->second.size();
      run->done(absl::UnavailableError(absl::StrCat(
          "only ", agreeing, " of the ", quorum, " sources needed report keys for ",
          request.server_name.str(),
          result.failures.empty() ? ""
                                  : absl::StrCat(": ", absl::StrJoin(result.failures, "; ")))));
    });
  }
}

void KeySources::FetchMany(std::vector<KeyQuery> requests, absl::Time deadline,
                           async::Callback<ResultsByServer> done) {
  if (options_.quorum > 1) {
    auto names = std::make_shared<std::vector<core::ServerName>>();
    for (const KeyQuery& r : requests) names->push_back(r.server_name);
    auto fanin = async::Fanin<FetchResult>::Create(
        requests.size(), [names, done = std::move(done)](
                             std::vector<absl::StatusOr<FetchResult>> results) mutable {
          ResultsByServer out;
          for (size_t i = 0; i < results.size(); ++i) {
            out.insert_or_assign((*names)[i], std::move(results[i]));
          }
          done(std::move(out));
        });
    for (size_t i = 0; i < requests.size(); ++i) Quorum(requests[i], deadline, fanin->Slot(i));
    return;
  }
  auto batch = std::make_shared<Batch>();
  batch->deadline = deadline;
  batch->done = std::move(done);
  {
    absl::MutexLock lock(&batch->mu);
    for (KeyQuery& r : requests) {
      auto it = batch->servers.find(r.server_name);
      if (it == batch->servers.end()) {
        const core::ServerName server = r.server_name;
        batch->servers.emplace(server, Batch::Progress(std::move(r)));
      } else {  // the same server twice: ask for both
        KeyQuery& q = it->second.request;
        for (std::string& id : r.key_ids) q.key_ids.push_back(std::move(id));
        q.minimum_valid_until_ts = std::max(q.minimum_valid_until_ts, r.minimum_valid_until_ts);
      }
    }
  }
  RunStage(std::move(batch), 0);
}

void KeySources::Fetch(const KeyQuery& request, absl::Time deadline,
                       async::Callback<FetchResult> done) {
  if (options_.quorum > 1) return Quorum(request, deadline, std::move(done));
  FetchMany({request}, deadline,
            [server = request.server_name, done = std::move(done)](
                absl::StatusOr<ResultsByServer> results) mutable {
              if (!results.ok()) return done(results.status());
              done(std::move(results->at(server)));
            });
}

}  // namespace keyverifier::fetch
