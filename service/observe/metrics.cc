#include "service/observe/metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace keyverifier::observe {
namespace {

// Verification is CPU-bound and fast; key fetches are network-bound and slow.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 5, 10};
  return *buckets;
}

}  // namespace

Metrics::Metrics(prometheus::Registry& registry, absl::string_view version)
    : rpcs_(prometheus::BuildCounter()
                .Name("keyverifier_rpcs_total")
                .Help("gRPC calls finished, by method and status code")
                .Register(registry)),
      rpc_seconds_(prometheus::BuildHistogram()
                       .Name("keyverifier_rpc_duration_seconds")
                       .Help("gRPC call latency, by method")
                       .Register(registry)),
      verdicts_(prometheus::BuildCounter()
                    .Name("keyverifier_verdicts_total")
                    .Help("Verdicts given, by outcome and reason")
                    .Register(registry)),
      key_cache_(prometheus::BuildCounter()
                     .Name("keyverifier_key_cache_lookups_total")
                     .Help("Key lookups answered from the cache (hit) or not (miss)")
                     .Register(registry)),
      fetches_(prometheus::BuildCounter()
                   .Name("keyverifier_key_fetches_total")
                   .Help("Key sources asked, by source (origin, notary) and outcome "
                         "(ok, unsatisfying, error)")
                   .Register(registry)),
      fetch_seconds_(prometheus::BuildHistogram()
                         .Name("keyverifier_key_fetch_duration_seconds")
                         .Help("Key fetch latency, by source")
                         .Register(registry)),
      disagreements_(prometheus::BuildCounter()
                         .Name("keyverifier_key_disagreements_total")
                         .Help("Key fetches where sources reported different keys")
                         .Register(registry)
                         .Add({})),
      vanished_(prometheus::BuildCounter()
                    .Name("keyverifier_keys_vanished_total")
                    .Help("Keys a server stopped publishing without listing them as old")
                    .Register(registry)
                    .Add({})),
      conflicts_(prometheus::BuildCounter()
                     .Name("keyverifier_key_conflicts_total")
                     .Help("Responses giving a known key id another key, by outcome "
                           "(refused, rebound)")
                     .Register(registry)),
      keyring_servers_(prometheus::BuildGauge()
                           .Name("keyverifier_keyring_servers")
                           .Help("Servers whose keys the keyring keeps in memory")
                           .Register(registry)
                           .Add({})),
      keyring_bytes_(prometheus::BuildGauge()
                         .Name("keyverifier_keyring_memory_bytes")
                         .Help("About what the keyring's cached keys and responses take in "
                               "memory (bounded by limits.keyring_memory_mb)")
                         .Register(registry)
                         .Add({})),
      fallbacks_(prometheus::BuildCounter()
                     .Name("keyverifier_tls_fingerprint_fallbacks_total")
                     .Help("Certificates accepted through the MSC1711 fingerprint fallback")
                     .Register(registry)
                     .Add({})),
      ct_unmet_(prometheus::BuildCounter()
                    .Name("keyverifier_tls_ct_unmet_total")
                    .Help("Certificates without the required SCTs (report mode)")
                    .Register(registry)
                    .Add({})),
      peer_verdicts_(prometheus::BuildCounter()
                         .Name("keyverifier_tls_peer_verdicts_total")
                         .Help("Federation peers' certificates judged by the policy on "
                               "outbound connections, by outcome (valid, invalid)")
                         .Register(registry)),
      refused_(prometheus::BuildCounter()
                   .Name("keyverifier_calls_refused_total")
                   .Help("Calls refused with RESOURCE_EXHAUSTED before any work, by reason "
                         "(queue_full: the verification queue; pending_bytes: request "
                         "bytes waiting)")
                   .Register(registry)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("keyverifier_worker_queue_depth")
                       .Help("Calls waiting for a verification worker, as the last call found them")
                       .Register(registry)
                       .Add({})),
      queue_capacity_(prometheus::BuildGauge()
                          .Name("keyverifier_worker_queue_capacity")
                          .Help("Calls the verification queue holds at most")
                          .Register(registry)
                          .Add({})),
      refreshes_(prometheus::BuildCounter()
                     .Name("keyverifier_refreshes_total")
                     .Help("Background key refreshes, by outcome")
                     .Register(registry)),
      refresh_lag_(prometheus::BuildHistogram()
                       .Name("keyverifier_refresh_lag_seconds")
                       .Help("How long after it was due a server was refreshed")
                       .Register(registry)
                       .Add({}, prometheus::Histogram::BucketBoundaries{
                                    0, 1, 5, 30, 60, 300, 900, 3600})),
      tracked_(prometheus::BuildGauge()
                   .Name("keyverifier_refresher_servers_tracked")
                   .Help("Servers the refresher keeps fresh")
                   .Register(registry)
                   .Add({})),
      backing_off_(prometheus::BuildGauge()
                       .Name("keyverifier_refresher_servers_backing_off")
                       .Help("Tracked servers whose last refresh failed")
                       .Register(registry)
                       .Add({})),
      notary_requests_(prometheus::BuildCounter()
                           .Name("keyverifier_notary_requests_total")
                           .Help("Requests the notary listener answered, by endpoint and HTTP status")
                           .Register(registry)),
      notary_served_(prometheus::BuildCounter()
                         .Name("keyverifier_notary_servers_total")
                         .Help("Servers asked about in notary queries, by outcome "
                               "(cached, fetched, stale, missing, own)")
                         .Register(registry)),
      serving_expiry_(prometheus::BuildGauge()
                          .Name("keyverifier_serving_certificate_expiry_timestamp_seconds")
                          .Help("When the certificate a listener of this service serves expires "
                                "(Unix time), by listener (grpc, notary)")
                          .Register(registry)),
      serving_loads_(prometheus::BuildCounter()
                         .Name("keyverifier_serving_certificate_loads_total")
                         .Help("Reads of a listener's certificate files that changed what it "
                               "serves or were refused, by listener and outcome")
                         .Register(registry)) {
  for (const char* outcome : {"cached", "fetched", "stale", "missing", "own"}) {
    notary_served_.Add({{"outcome", outcome}});
  }
  for (const char* source : {"origin", "notary"}) {
    for (const char* outcome : {"ok", "unsatisfying", "error"}) {
      fetches_.Add({{"source", source}, {"outcome", outcome}});
    }
    fetch_seconds_.Add({{"source", source}}, LatencyBuckets());
  }
  for (const char* outcome : {"ok", "error"}) refreshes_.Add({{"outcome", outcome}});
  for (const char* outcome : {"refused", "rebound"}) conflicts_.Add({{"outcome", outcome}});
  for (const char* outcome : {"valid", "valid_but_redacted", "invalid"}) {
    for (const char* reason :
         {"ok", "content_hash_mismatch", "missing_signature", "unknown_key",
          "key_not_valid", "bad_signature", "malformed_signature",
          "destination_mismatch"}) {
      verdict_counters_[outcome][reason] =
          &verdicts_.Add({{"outcome", outcome}, {"reason", reason}});
    }
  }
  peer_valid_ = &peer_verdicts_.Add({{"outcome", "valid"}});
  peer_invalid_ = &peer_verdicts_.Add({{"outcome", "invalid"}});
  for (const char* reason : {"queue_full", "pending_bytes"}) refused_.Add({{"reason", reason}});
  key_cache_hit_ = &key_cache_.Add({{"result", "hit"}});
  key_cache_miss_ = &key_cache_.Add({{"result", "miss"}});
  prometheus::BuildGauge()
      .Name("keyverifier_build_info")
      .Help("Always 1; labels describe the build")
      .Register(registry)
      .Add({{"version", std::string(version)}})
      .Set(1);
}

void Metrics::RecordRpc(absl::string_view method, absl::string_view code,
                        double seconds) {
  std::string key = absl::StrCat(method, " ", code);
  RpcMetrics m;
  {
    absl::MutexLock lock(&rpc_mu_);
    auto it = rpc_metrics_.find(key);
    if (it == rpc_metrics_.end()) {
      m.calls = &rpcs_.Add({{"method", std::string(method)}, {"code", std::string(code)}});
      m.seconds = &rpc_seconds_.Add({{"method", std::string(method)}}, LatencyBuckets());
      it = rpc_metrics_.emplace(std::move(key), m).first;
    }
    m = it->second;
  }
  m.calls->Increment();
  m.seconds->Observe(seconds);
}

void Metrics::OnVerdict(absl::string_view outcome, absl::string_view reason) {
  auto by_outcome = verdict_counters_.find(outcome);
  if (by_outcome != verdict_counters_.end()) {
    auto counter = by_outcome->second.find(reason);
    if (counter != by_outcome->second.end()) {
      counter->second->Increment();
      return;
    }
  }
  verdicts_.Add({{"outcome", std::string(outcome)}, {"reason", std::string(reason)}})
      .Increment();
}

void Metrics::OnKeyLookup(bool cache_hit) {
  (cache_hit ? key_cache_hit_ : key_cache_miss_)->Increment();
}

void Metrics::OnKeyFetch(absl::string_view source, absl::string_view outcome,
                         absl::Duration latency) {
  // Fetches are rare next to verdicts: Family::Add (a locked lookup) is fine.
  fetches_.Add({{"source", std::string(source)}, {"outcome", std::string(outcome)}})
      .Increment();
  fetch_seconds_.Add({{"source", std::string(source)}}, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::OnKeyDisagreement(absl::string_view) { disagreements_.Increment(); }

void Metrics::OnKeyVanished(absl::string_view, absl::string_view) { vanished_.Increment(); }

void Metrics::OnKeyringMemory(size_t servers, size_t bytes) {
  keyring_servers_.Set(static_cast<double>(servers));
  keyring_bytes_.Set(static_cast<double>(bytes));
}

void Metrics::OnKeyConflict(absl::string_view, absl::string_view, absl::string_view outcome) {
  conflicts_.Add({{"outcome", std::string(outcome)}}).Increment();
}

void Metrics::OnCallRefused(absl::string_view reason) {
  refused_.Add({{"reason", std::string(reason)}}).Increment();
}

void Metrics::OnRefresh(absl::string_view outcome, absl::Duration lag) {
  refreshes_.Add({{"outcome", std::string(outcome)}}).Increment();
  refresh_lag_.Observe(std::max(0.0, absl::ToDoubleSeconds(lag)));
}

void Metrics::OnNotaryRequest(absl::string_view endpoint, int http_status) {
  notary_requests_.Add({{"endpoint", std::string(endpoint)}, {"code", absl::StrCat(http_status)}})
      .Increment();
}

void Metrics::OnNotaryServed(absl::string_view outcome) {
  notary_served_.Add({{"outcome", std::string(outcome)}}).Increment();
}

void Metrics::OnServingCertificate(absl::string_view listener, absl::string_view outcome,
                                   absl::string_view, absl::Time not_after) {
  // Both outcomes exist from a listener's first load on, so the first
  // refusal is an increase from zero.
  for (const char* o : {"changed", "refused"}) {
    prometheus::Counter& c =
        serving_loads_.Add({{"listener", std::string(listener)}, {"outcome", o}});
    if (outcome == o) c.Increment();
  }
  serving_expiry_.Add({{"listener", std::string(listener)}})
      .Set(absl::ToDoubleSeconds(not_after - absl::UnixEpoch()));
}

void Metrics::OnRefresherState(size_t tracked, size_t backing_off) {
  tracked_.Set(static_cast<double>(tracked));
  backing_off_.Set(static_cast<double>(backing_off));
}

}  // namespace keyverifier::observe
