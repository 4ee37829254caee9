#include "service/net/peer_verifier.h"

#include <openssl/ssl.h>

namespace keyverifier::net {

absl::Status AcceptAnyPeer::ConfigureContext(SSL_CTX* ctx) const {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    return absl::InternalError("could not set the minimum TLS version");
  }
  return absl::OkStatus();
}

}  // namespace keyverifier::net
