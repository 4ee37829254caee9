// LoggingObserver: passes every event on to another observer (the metrics)
// and logs the ones an operator must hear about: sources disagreeing on a
// server's keys, and keys that vanished from a server's responses.
// Thread-safe; both are borrowed.
#ifndef KEYVERIFIER_SERVICE_OBSERVE_LOGGING_OBSERVER_H_
#define KEYVERIFIER_SERVICE_OBSERVE_LOGGING_OBSERVER_H_

#include "service/observe/log.h"
#include "service/observe/observer.h"

namespace keyverifier::observe {

class LoggingObserver final : public Observer {
 public:
  LoggingObserver(Observer& next, Logger& log) : next_(next), log_(log) {}

  void OnRpc(absl::string_view method, absl::string_view code,
             absl::Duration latency) override {
    next_.OnRpc(method, code, latency);
  }
  void OnVerdict(absl::string_view outcome, absl::string_view reason) override {
    next_.OnVerdict(outcome, reason);
  }
  void OnKeyLookup(bool cache_hit) override { next_.OnKeyLookup(cache_hit); }
  void OnKeyFetch(absl::string_view source, absl::string_view outcome,
                  absl::Duration latency) override {
    next_.OnKeyFetch(source, outcome, latency);
  }
  void OnKeyDisagreement(absl::string_view server) override {
    next_.OnKeyDisagreement(server);
    log_.Log(LogLevel::kWarning, "key sources disagree", {{"server", server}});
  }
  void OnKeyVanished(absl::string_view server, absl::string_view key_id) override {
    next_.OnKeyVanished(server, key_id);
    log_.Log(LogLevel::kWarning,
             "a key vanished: the server no longer lists it, not even as an old key",
             {{"server", server}, {"key_id", key_id}});
  }
  void OnErrorDetail(absl::string_view id, absl::string_view detail) override {
    next_.OnErrorDetail(id, detail);
    log_.Log(LogLevel::kWarning, "a caller got an error; its details", {{"error_id", id}, {"detail", detail}});
  }
  void OnKeyConflict(absl::string_view server, absl::string_view key_id,
                     absl::string_view outcome) override {
    next_.OnKeyConflict(server, key_id, outcome);
    log_.Log(LogLevel::kWarning,
             outcome == "rebound"
                 ? "the origin bound a key id to another key than notaries had given; the "
                   "origin's key replaces it"
                 : "a response gave a known key id another key; it was refused",
             {{"server", server}, {"key_id", key_id}, {"outcome", outcome}});
  }
  void OnCertificateFallback(absl::string_view tls_name) override {
    next_.OnCertificateFallback(tls_name);
    log_.Log(LogLevel::kWarning,
             "certificate accepted only through the MSC1711 fingerprint fallback",
             {{"name", tls_name}});
  }
  void OnCtPolicyUnmet(absl::string_view tls_name) override {
    next_.OnCtPolicyUnmet(tls_name);
    log_.Log(LogLevel::kWarning, "certificate lacks the Certificate Transparency required",
             {{"name", tls_name}});
  }
  void OnPeerCertificateVerdict(absl::string_view tls_name, bool valid) override {
    next_.OnPeerCertificateVerdict(tls_name, valid);
  }
  void OnCallRefused(absl::string_view reason) override { next_.OnCallRefused(reason); }
  void OnWorkerQueue(size_t queued, size_t capacity) override {
    next_.OnWorkerQueue(queued, capacity);
  }
  void OnRefresh(absl::string_view outcome, absl::Duration lag) override {
    next_.OnRefresh(outcome, lag);
  }
  void OnRefresherState(size_t tracked, size_t backing_off) override {
    next_.OnRefresherState(tracked, backing_off);
  }
  void OnKeyringMemory(size_t servers, size_t bytes) override {
    next_.OnKeyringMemory(servers, bytes);
  }
  void OnNotaryRequest(absl::string_view endpoint, int http_status) override {
    next_.OnNotaryRequest(endpoint, http_status);
  }
  void OnNotaryServed(absl::string_view outcome) override { next_.OnNotaryServed(outcome); }
  void OnServingCertificate(absl::string_view listener, absl::string_view outcome,
                            absl::string_view detail, absl::Time not_after) override {
    next_.OnServingCertificate(listener, outcome, detail, not_after);
    const bool refused = outcome == "refused";
    log_.Log(refused ? LogLevel::kError : LogLevel::kInfo,
             refused ? "renewed certificate files refused; the certificate in use stays"
                     : "serving certificate loaded",
             {{"listener", listener},
              {refused ? "error" : "certificate", detail},
              {"not_after", absl::FormatTime(absl::RFC3339_sec, not_after, absl::UTCTimeZone())}});
  }

 private:
  Observer& next_;
  Logger& log_;
};

}  // namespace keyverifier::observe

#endif  // KEYVERIFIER_SERVICE_OBSERVE_LOGGING_OBSERVER_H_
