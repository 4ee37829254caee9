// Observer: how service logic reports what happened, without knowing about
// metrics or logs. The default does nothing; Metrics implements it.
// Implementations must be thread-safe.
#ifndef KEYVERIFIER_SERVICE_OBSERVE_OBSERVER_H_
#define KEYVERIFIER_SERVICE_OBSERVE_OBSERVER_H_

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace keyverifier::observe {

class Observer {
 public:
  virtual ~Observer() = default;
  // A gRPC call finished: `method` is the full method name
  // ("/keyverifier.v1.KeyVerifier/VerifyEvents"), `code` the status code name.
  virtual void OnRpc(absl::string_view method, absl::string_view code,
                     absl::Duration latency) {}
  // A verdict was given. outcome: valid | valid_but_redacted | invalid.
  virtual void OnVerdict(absl::string_view outcome, absl::string_view reason) {}
  // A key lookup was answered from the cache (hit) or needed a source (miss).
  virtual void OnKeyLookup(bool cache_hit) {}
  // A key source was asked. source: origin | notary; outcome: ok |
  // unsatisfying (answered, but not what was asked) | error.
  virtual void OnKeyFetch(absl::string_view source, absl::string_view outcome,
                          absl::Duration latency) {}
  // Sources reported different keys for one server (quorum policy).
  virtual void OnKeyDisagreement(absl::string_view server) {}
  // A server's new key response no longer lists a key it listed before, not
  // even among its old keys.
  virtual void OnKeyVanished(absl::string_view server, absl::string_view key_id) {}
  // What the keyring keeps in memory: servers, and about how many bytes
  // their keys and responses take (bounded by limits.keyring_memory_mb).
  virtual void OnKeyringMemory(size_t servers, size_t bytes) {}
  // A caller got a server-side error whose details (resolved addresses,
  // transport or database particulars) stay out of its message: they are
  // here, under the id the caller's message names.
  virtual void OnErrorDetail(absl::string_view id, absl::string_view detail) {}
  // A response gave a known key id another key (MSC4499): `outcome` is
  // "refused" (the binding stands, the response is not stored or served) or
  // "rebound" (the origin replaced a binding only notaries had vouched for).
  virtual void OnKeyConflict(absl::string_view server, absl::string_view key_id,
                             absl::string_view outcome) {}
  // A federation certificate that failed the policy was accepted through the
  // MSC1711 fingerprint fallback.
  virtual void OnCertificateFallback(absl::string_view tls_name) {}
  // The certificate policy judged a federation peer's handshake (every
  // outbound HTTPS connection): valid or not, whichever rule applied.
  virtual void OnPeerCertificateVerdict(absl::string_view tls_name, bool valid) {}
  // A call was refused before any work: `reason` is "queue_full" (the
  // verification queue held its maximum) or "pending_bytes" (calls waiting
  // held limits.max_pending_request_mb).
  virtual void OnCallRefused(absl::string_view reason) {}
  // A call was queued for the verification workers (or refused): how many
  // wait now, of at most `capacity`.
  virtual void OnWorkerQueue(size_t queued, size_t capacity) {}
  // A certificate lacked the Certificate Transparency the policy asks for, in
  // report mode (in enforce mode it is a rejection).
  virtual void OnCtPolicyUnmet(absl::string_view tls_name) {}
  // The refresher refreshed a server (outcome: ok | error), `lag` after it
  // was due.
  virtual void OnRefresh(absl::string_view outcome, absl::Duration lag) {}
  // After each refresher pass: servers tracked, and how many are backing off.
  virtual void OnRefresherState(size_t tracked, size_t backing_off) {}
  // The notary listener answered a request (endpoint: query | server |
  // other) with an HTTP status.
  virtual void OnNotaryRequest(absl::string_view endpoint, int http_status) {}
  // One server of a notary query: "cached" (served as cached), "fetched"
  // (the origin was asked), "stale" (too old, the origin could not be asked
  // or reached, the last answer served), "missing" (nothing to serve),
  // "own" (the notary's own keys).
  virtual void OnNotaryServed(absl::string_view outcome) {}
  // One of the service's own listeners (listener: grpc | notary) read its
  // certificate files: outcome "changed" (at start, or a renewal now served
  // to new connections; detail names the leaf) or "refused" (the files did
  // not check out; detail says why, and the certificate in use stays).
  // `not_after` is the expiry of the certificate being served.
  virtual void OnServingCertificate(absl::string_view listener, absl::string_view outcome,
                                    absl::string_view detail, absl::Time not_after) {}
};

// Shared do-nothing instance for callers that observe nothing.
inline Observer& NoopObserver() {
  static Observer* const noop = new Observer();
  return *noop;
}

}  // namespace keyverifier::observe

#endif  // KEYVERIFIER_SERVICE_OBSERVE_OBSERVER_H_
