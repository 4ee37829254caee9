// Metrics: the service's Prometheus metrics, in one place. The rest of the
// code reports events through the Observer interface this implements (per-RPC
// figures come from the service's dispatch path); nothing else touches
// prometheus-cpp.
//
// Thread-safe (prometheus-cpp metrics are). The Registry must outlive this.
#ifndef KEYVERIFIER_SERVICE_OBSERVE_METRICS_H_
#define KEYVERIFIER_SERVICE_OBSERVE_METRICS_H_

#include <map>
#include <memory>
#include <string>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "service/observe/observer.h"

namespace keyverifier::observe {

class Metrics final : public Observer {
 public:
  // `version` is reported in keyverifier_build_info.
  Metrics(prometheus::Registry& registry, absl::string_view version);

  // One finished RPC: method is the full gRPC method name, code its status.
  void RecordRpc(absl::string_view method, absl::string_view code,
                 double seconds);
  void OnRpc(absl::string_view method, absl::string_view code,
             absl::Duration latency) override {
    RecordRpc(method, code, absl::ToDoubleSeconds(latency));
  }
  void OnVerdict(absl::string_view outcome, absl::string_view reason) override;
  void OnKeyLookup(bool cache_hit) override;
  void OnKeyFetch(absl::string_view source, absl::string_view outcome,
                  absl::Duration latency) override;
  void OnKeyDisagreement(absl::string_view server) override;
  void OnKeyVanished(absl::string_view server, absl::string_view key_id) override;
  void OnKeyConflict(absl::string_view server, absl::string_view key_id,
                     absl::string_view outcome) override;
  void OnKeyringMemory(size_t servers, size_t bytes) override;
  void OnCertificateFallback(absl::string_view) override { fallbacks_.Increment(); }
  void OnCtPolicyUnmet(absl::string_view) override { ct_unmet_.Increment(); }
  void OnPeerCertificateVerdict(absl::string_view, bool valid) override {
    (valid ? peer_valid_ : peer_invalid_)->Increment();
  }
  void OnCallRefused(absl::string_view reason) override;
  void OnWorkerQueue(size_t queued, size_t capacity) override {
    queue_depth_.Set(static_cast<double>(queued));
    queue_capacity_.Set(static_cast<double>(capacity));
  }
  void OnRefresh(absl::string_view outcome, absl::Duration lag) override;
  void OnRefresherState(size_t tracked, size_t backing_off) override;
  void OnNotaryRequest(absl::string_view endpoint, int http_status) override;
  void OnNotaryServed(absl::string_view outcome) override;
  void OnServingCertificate(absl::string_view listener, absl::string_view outcome,
                            absl::string_view detail, absl::Time not_after) override;

 private:
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Histogram>& rpc_seconds_;
  prometheus::Family<prometheus::Counter>& verdicts_;
  prometheus::Family<prometheus::Counter>& key_cache_;
  // Counters for every known verdict, made up front so the per-event path is
  // a lock-free lookup in an immutable map rather than Family::Add.
  std::map<std::string, std::map<std::string, prometheus::Counter*, std::less<>>,
           std::less<>>
      verdict_counters_;
  prometheus::Family<prometheus::Counter>& fetches_;
  prometheus::Family<prometheus::Histogram>& fetch_seconds_;
  prometheus::Counter& disagreements_;
  prometheus::Counter& vanished_;
  prometheus::Family<prometheus::Counter>& conflicts_;
  prometheus::Gauge& keyring_servers_;
  prometheus::Gauge& keyring_bytes_;
  prometheus::Counter& fallbacks_;
  prometheus::Counter& ct_unmet_;
  prometheus::Family<prometheus::Counter>& peer_verdicts_;
  prometheus::Counter* peer_valid_;
  prometheus::Counter* peer_invalid_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Gauge& queue_depth_;
  prometheus::Gauge& queue_capacity_;
  prometheus::Family<prometheus::Counter>& refreshes_;
  prometheus::Histogram& refresh_lag_;
  prometheus::Gauge& tracked_;
  prometheus::Gauge& backing_off_;
  prometheus::Family<prometheus::Counter>& notary_requests_;
  prometheus::Family<prometheus::Counter>& notary_served_;
  prometheus::Family<prometheus::Gauge>& serving_expiry_;
  prometheus::Family<prometheus::Counter>& serving_loads_;
  prometheus::Counter* key_cache_hit_;
  prometheus::Counter* key_cache_miss_;

  // Per (method, code) metrics, created on first use and then only looked up.
  struct RpcMetrics {
    prometheus::Counter* calls;
    prometheus::Histogram* seconds;
  };
  absl::Mutex rpc_mu_;
  absl::flat_hash_map<std::string, RpcMetrics> rpc_metrics_ ABSL_GUARDED_BY(rpc_mu_);
};

}  // namespace keyverifier::observe

#endif  // KEYVERIFIER_SERVICE_OBSERVE_METRICS_H_
