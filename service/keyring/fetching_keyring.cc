#include "service/keyring/fetching_keyring.h"

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/clock/backoff.h"
#include "service/core/server_name.h"

namespace keyverifier::keyring {
namespace {

// The store's rules refused a response (it is invalid, or a key id's bytes
// differ from the stored ones), as opposed to the store failing to write.
bool StoreRefused(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) || absl::IsInvalidArgument(s);
}

}  // namespace

FetchingKeyRing::FetchingKeyRing(store::KeyStore& store, fetch::KeySources* sources,
                                 const Clock& clock, observe::Observer& observer,
                                 Options options)
    : store_(store), sources_(sources), clock_(clock), observer_(observer),
      options_(options) {}

bool FetchingKeyRing::Answers(const std::vector<store::StoredKey>& keys,
                              const KeyQuery& query) {
  return KeysAnswer(keys, query, [](const store::StoredKey& k) -> const core::VerifyKey& {
    return k.key;
  });
}

KeyResult FetchingKeyRing::ToResult(const std::string& server, const Entry& entry,
                                    KeySource source, bool include_raw_json) const {
  KeyResult r;
  r.server_name = server;
  r.source = std::move(source);
  for (const store::StoredKey& k : entry.keys) {
    (k.is_old() ? r.old_verify_keys : r.verify_keys).push_back(k.key);
  }
  if (include_raw_json) {
    for (const store::StoredResponse& resp : entry.responses) r.raw_json.push_back(resp.raw_json);
  }
  return r;
}

absl::StatusOr<FetchingKeyRing::Entry> FetchingKeyRing::LoadFromStore(const std::string& server) {
  Entry e;
  absl::StatusOr<std::vector<store::StoredKey>> keys = store_.GetKeys(server);
  if (!keys.ok()) return keys.status();
  absl::StatusOr<std::vector<store::StoredResponse>> responses = store_.GetResponses(server);
  if (!responses.ok()) return responses.status();
  e.keys = *std::move(keys);
  e.responses = *std::move(responses);
  return e;
}

void FetchingKeyRing::Remember(const std::string& server, Entry entry) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(server);
  if (it != entries_.end()) {
    entry.last_asked = std::max(entry.last_asked, it->second.last_asked);
  }
  entries_[server] = std::move(entry);
  if (entries_.size() > options_.max_servers) {
    std::vector<std::pair<absl::Time, std::string>> by_age;
    by_age.reserve(entries_.size());
    for (const auto& [name, e] : entries_) {
      if (name != server) by_age.push_back({e.last_asked, name});
    }
    const size_t drop = std::min(by_age.size(), std::max<size_t>(1, options_.max_servers / 100));
    std::nth_element(by_age.begin(), by_age.begin() + (drop - 1), by_age.end());
    for (size_t i = 0; i < drop; ++i) entries_.erase(by_age[i].second);
  }
}

void FetchingKeyRing::Touch(const std::string& server) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(server);
  if (it != entries_.end()) it->second.last_asked = clock_.Now();
}

absl::StatusOr<KeyResult> FetchingKeyRing::Store(const std::string& server,
                                                 fetch::FetchResult fetched,
                                                 const KeyQuery& query, Entry entry) {
  const int64_t now_ms = clock_.NowMs();
  const std::string source =
      fetched.sources.empty() || fetched.sources[0] == "origin" ? server : fetched.sources[0];
  KeySource ks{KeySource::Kind::kOrigin, ""};
  if (source != server) ks = {KeySource::Kind::kNotary, source};
  entry.failures = 0;
  entry.retry_after = absl::InfinitePast();

  absl::StatusOr<store::WriteResult> written = store_.StoreResponse(fetched.keys, source, now_ms);
  if (!written.ok() && StoreRefused(written.status())) return written.status();
  absl::StatusOr<Entry> reloaded = written.ok() ? LoadFromStore(server) : written.status();
  if (!reloaded.ok()) {
    // The store failed: answer with what was fetched. Memory keeps what it
    // knew, and the next miss tries the store again.
    Remember(server, std::move(entry));
    KeyResult r;
    r.server_name = server;
    r.verify_keys = fetched.keys.verify_keys;
    r.old_verify_keys = fetched.keys.old_verify_keys;
    r.source = ks;
    if (query.include_raw_json) r.raw_json.push_back(fetched.keys.raw_json);
    return r;
  }
  for (const std::string& id : written->vanished_keys) observer_.OnKeyVanished(server, id);
  entry.keys = std::move(reloaded->keys);
  entry.responses = std::move(reloaded->responses);
  KeyResult r = ToResult(server, entry, ks, query.include_raw_json);
  Remember(server, std::move(entry));
  return r;
}

absl::StatusOr<KeyResult> FetchingKeyRing::Miss(const KeyQuery& query, bool force,
                                                absl::Time deadline) {
  const std::string& server = query.server_name;
  absl::StatusOr<Entry> stored = LoadFromStore(server);
  Entry entry;
  int failures = 0;
  absl::Time retry_after = absl::InfinitePast();
  {
    absl::MutexLock lock(&mu_);
    if (auto it = entries_.find(server); it != entries_.end()) {
      entry = it->second;  // what memory had, if the store cannot be read
      failures = it->second.failures;
      retry_after = it->second.retry_after;
    }
  }
  if (stored.ok()) {
    stored->failures = failures;
    stored->retry_after = retry_after;
    stored->last_asked = clock_.Now();
    entry = *std::move(stored);
  }
  if (!force && Answers(entry.keys, query)) {
    Remember(server, entry);
    return ToResult(server, entry, {KeySource::Kind::kCache, ""}, query.include_raw_json);
  }
  const bool may_fetch = sources_ != nullptr && (force || clock_.Now() >= retry_after);
  absl::Status fetch_error = absl::NotFoundError(
      sources_ == nullptr
          ? absl::StrCat("no keys known for ", server, " and no key sources configured")
          : absl::StrCat("no keys known for ", server, "; fetching is backing off until ",
                         absl::FormatTime(retry_after)));
  if (may_fetch) {
    absl::StatusOr<fetch::FetchResult> fetched =
        sources_->Fetch({server, query.key_ids, query.minimum_valid_until_ts}, deadline);
    if (fetched.ok() && fetched->keys.server_name != server) {
      fetched = absl::UnavailableError(absl::StrCat(
          "asked for the keys of ", server, ", got those of ", fetched->keys.server_name));
    }
    if (fetched.ok()) {
      absl::StatusOr<KeyResult> answer = Store(server, *std::move(fetched), query, entry);
      if (answer.ok()) return answer;
      // The store refused it: known keys stay as they were, the refused ones
      // are not served.
      fetched = absl::UnavailableError(
          absl::StrCat("the key store refused the fetched keys: ", answer.status().message()));
    }
    fetch_error = fetched.status();
    entry.failures += 1;
    entry.retry_after = clock_.Now() + Backoff(entry.failures, options_.failure_backoff_initial,
                                               options_.failure_backoff_max);
  }
  Remember(server, entry);
  if (!entry.keys.empty()) {
    // Stale, but the last good answer: the verifier's validity rules decide
    // whether these keys still verify what is asked.
    return ToResult(server, entry, {KeySource::Kind::kCache, ""}, query.include_raw_json);
  }
  if (!stored.ok() && absl::IsNotFound(fetch_error)) {
    return absl::UnavailableError(
        absl::StrCat("key store unreadable for ", server, ": ", stored.status().message()));
  }
  return fetch_error;
}

absl::StatusOr<KeyResult> FetchingKeyRing::GetKeys(const KeyQuery& query, absl::Time deadline) {
  // Only valid names ever enter memory, so a hit needs no parse.
  if (std::optional<KeyResult> known = TryGetKeysFromMemory(query)) return *std::move(known);
  if (absl::Status s = core::ParseServerName(query.server_name).status(); !s.ok()) return s;
  observer_.OnKeyLookup(false);
  bool ran = false;
  const std::function<absl::StatusOr<KeyResult>()> lookup = [&] {
    ran = true;
    return Miss(query, /*force=*/false, deadline);
  };
  absl::StatusOr<KeyResult> r = flights_.Do(query.server_name, deadline, lookup);
  if (!ran && r.ok()) {
    // Another caller's lookup answered that caller's query (its key ids,
    // minimum validity, raw JSON or not): this query is answered from what
    // it left in memory, or by a lookup of its own.
    std::optional<KeyResult> mine = FromMemory(query);
    r = mine ? *std::move(mine) : flights_.Do(query.server_name, deadline, lookup);
  }
  Touch(query.server_name);
  return r;
}

std::optional<KeyResult> FetchingKeyRing::TryGetKeysFromMemory(const KeyQuery& query) {
  std::optional<KeyResult> r = FromMemory(query);
  if (r) observer_.OnKeyLookup(true);
  return r;
}

std::optional<KeyResult> FetchingKeyRing::FromMemory(const KeyQuery& query) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(query.server_name);
  if (it == entries_.end() || !Answers(it->second.keys, query)) return std::nullopt;
  it->second.last_asked = clock_.Now();
  return ToResult(query.server_name, it->second, {KeySource::Kind::kCache, ""},
                  query.include_raw_json);
}

absl::StatusOr<int64_t> FetchingKeyRing::Refresh(absl::string_view server, absl::Time deadline) {
  KeyQuery query;
  query.server_name = std::string(server);
  absl::StatusOr<KeyResult> r = flights_.Do(query.server_name, deadline, [&] {
    return Miss(query, /*force=*/true, deadline);
  });
  if (!r.ok()) return r.status();
  const Freshness after = FreshnessOf(server);
  if (r->source.kind == KeySource::Kind::kCache) {
    return absl::UnavailableError(absl::StrCat("refreshing ", server, " fetched nothing new"));
  }
  return after.valid_until_ts;
}

std::vector<std::string> FetchingKeyRing::TlsFingerprintsOf(absl::string_view host) {
  std::vector<std::string> raw_responses;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [server, e] : entries_) {
      absl::StatusOr<core::ServerName> name = core::ParseServerName(server);
      if (!name.ok() || name->host != host) continue;
      for (const store::StoredResponse& r : e.responses) raw_responses.push_back(r.raw_json);
    }
  }
  std::vector<std::string> out;
  for (const std::string& raw : raw_responses) {
    for (std::string& fp : core::TlsFingerprints(raw)) out.push_back(std::move(fp));
  }
  return out;
}

std::vector<std::pair<std::string, absl::Time>> FetchingKeyRing::TrackedServers() {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, absl::Time>> out;
  out.reserve(entries_.size());
  for (const auto& [server, e] : entries_) out.emplace_back(server, e.last_asked);
  return out;
}

FetchingKeyRing::Freshness FetchingKeyRing::FreshnessOf(absl::string_view server) {
  absl::MutexLock lock(&mu_);
  Freshness f;
  auto it = entries_.find(std::string(server));
  if (it == entries_.end()) return f;
  for (const store::StoredResponse& r : it->second.responses) {
    f.valid_until_ts = std::max(f.valid_until_ts, r.valid_until_ts);
    f.fetched_ts = std::max(f.fetched_ts, r.fetched_ts);
  }
  return f;
}

}  // namespace keyverifier::keyring
