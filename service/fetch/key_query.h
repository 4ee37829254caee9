// KeyQuery: which keys of which server a caller needs. One type from the
// API down to the key sources: the keyring answers it from memory or the
// store, or hands it to KeySources, whose answer satisfies it or not. The
// server name was parsed where it entered (the API, an event, the
// configuration); nothing below parses it again.
#ifndef KEYVERIFIER_SERVICE_FETCH_KEY_QUERY_H_
#define KEYVERIFIER_SERVICE_FETCH_KEY_QUERY_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "service/core/server_name.h"

namespace keyverifier::fetch {

struct KeyQuery {
  KeyQuery(core::ServerName server, std::vector<std::string> ids = {},
                    int64_t minimum = 0)
      : server_name(std::move(server)),
        key_ids(std::move(ids)),
        minimum_valid_until_ts(minimum) {}

  core::ServerName server_name;
  // Key ids wanted; empty means whatever the server has.
  std::vector<std::string> key_ids;
  // Current keys must be valid until at least this time (ms); known keys
  // that are not make the keyring fetch, and an answer that is not does not
  // satisfy. 0: no requirement.
  int64_t minimum_valid_until_ts = 0;
  // Whether the keyring's answer should carry the signed responses
  // (raw_json); event verification does not need them. Sources ignore it.
  bool include_raw_json = true;
};

}  // namespace keyverifier::fetch

#endif  // KEYVERIFIER_SERVICE_FETCH_KEY_QUERY_H_
