// The findings of a federation report: what is wrong with a server, one line
// each, with the fix its operator would apply. Pure: it reads what the
// Diagnoser observed (discovery, addresses, key responses, the key store's
// history, notaries, the version endpoint) and decides; nothing here does
// I/O or reads a clock.
//
// Severity: ERROR when federation with the server fails, or fails for some
// of its peers (no address reachable, a certificate the MSC1711 policy
// refuses, addresses or notaries serving other keys, a key id bound to a
// new key, keys already expired); WARNING when it works but against the
// spec or fragile (only the deprecated _matrix._tcp SRV name, CNAME SRV
// targets, valid_until_ts beyond the 7 days peers trust or very short,
// keys dropped without old_verify_keys, a certificate expiring soon, no
// version endpoint); INFO for what is merely worth knowing.
//
// Thread-compatible.
#ifndef KEYVERIFIER_SERVICE_DIAGNOSE_FINDINGS_H_
#define KEYVERIFIER_SERVICE_DIAGNOSE_FINDINGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "keyverifier/v1/service.pb.h"

namespace keyverifier::diagnose {

struct AnalysisOptions {
  // The time of the report (Matrix ms).
  int64_t now_ms = 0;
  // A valid_until_ts closer than this makes every peer refetch constantly.
  int64_t short_validity_ms = int64_t{3600} * 1000;
  // A certificate expiring within this many days is a warning.
  int64_t certificate_warning_days = 14;
};

// Fills `report`'s derived fields (keys.addresses_agree, keys.reused_key_ids,
// keys.vanished_key_ids, each notary's agrees_with_direct and difference),
// its findings (most severe first, then in the order the report reads) and
// federation_ok (no ERROR finding). Replaces whatever they held.
void Analyze(v1::DiagnoseServerResponse* report, const AnalysisOptions& options);

// "ed25519:a=KEY,ed25519:b=KEY": a key set's identity, for comparisons and
// messages (sorted by key id).
std::string KeySetText(const google::protobuf::RepeatedPtrField<v1::DiagnoseKey>& keys);

}  // namespace keyverifier::diagnose

#endif  // KEYVERIFIER_SERVICE_DIAGNOSE_FINDINGS_H_
