#include "service/observe/metrics.h"

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
                     .Register(registry)) {
  prometheus::BuildGauge()
      .Name("keyverifier_build_info")
      .Help("Always 1; labels describe the build")
      .Register(registry)
      .Add({{"version", std::string(version)}})
      .Set(1);
}

void Metrics::RecordRpc(absl::string_view method, absl::string_view code,
                        double seconds) {
  rpcs_.Add({{"method", std::string(method)}, {"code", std::string(code)}})
      .Increment();
  rpc_seconds_.Add({{"method", std::string(method)}}, LatencyBuckets())
      .Observe(seconds);
}

void Metrics::OnVerdict(absl::string_view outcome, absl::string_view reason) {
  verdicts_.Add({{"outcome", std::string(outcome)}, {"reason", std::string(reason)}})
      .Increment();
}

void Metrics::OnKeyLookup(bool cache_hit) {
  key_cache_.Add({{"result", cache_hit ? "hit" : "miss"}}).Increment();
}

}  // namespace keyverifier::observe
