// Resolver: the DNS lookups server discovery needs (SRV, and A/AAAA with
// CNAMEs followed).
//
// Asynchronous: a lookup returns at once and its callback is invoked exactly
// once (on the fetch engine's loop for the real resolver; a fake may answer
// inline). CaresResolver (c-ares on the FetchEngine) is the real one; tests
// use a scripted fake. Implementations are thread-safe. Errors: NotFoundError
// when the name has no such records (NXDOMAIN or no data), UnavailableError
// when the lookup failed (timeout, server failure, refused),
// DeadlineExceededError when `deadline` passed first, CancelledError when
// the engine stopped. Messages name the record type and the name.
#ifndef KEYVERIFIER_SERVICE_NET_RESOLVER_H_
#define KEYVERIFIER_SERVICE_NET_RESOLVER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/async/callback.h"
#include "service/net/ip_address.h"

namespace keyverifier::net {

struct SrvRecord {
  std::string target;  // without the trailing dot
  uint16_t port = 0;
  uint16_t priority = 0;
  uint16_t weight = 0;
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  // SRV records of `name` (e.g. "_matrix-fed._tcp.example.org").
  virtual void LookupSrv(absl::string_view name, absl::Time deadline,
                         async::Callback<std::vector<SrvRecord>> done) = 0;
  // IPv6 and IPv4 addresses of `host`, IPv6 first. An IPv4-mapped AAAA
  // answer (::ffff:a.b.c.d) is the IPv4 address it maps to.
  virtual void LookupHost(absl::string_view host, absl::Time deadline,
                          async::Callback<std::vector<IpAddress>> done) = 0;

  // The CNAME records the address lookup of `host` passes through, each as
  // "alias -> canonical name"; empty when `host` is no alias. For reports
  // (SRV targets must not be aliases); discovery itself follows CNAMEs. The
  // default says the resolver cannot tell (UnimplementedError).
  virtual void LookupCnames(absl::string_view host, absl::Time deadline,
                            async::Callback<std::vector<std::string>> done) {
    done(absl::UnimplementedError("this resolver does not report CNAME records"));
  }

  // Blocking forms, for tools and tests.
  absl::StatusOr<std::vector<SrvRecord>> LookupSrvAndWait(absl::string_view name,
                                                          absl::Time deadline) {
    return async::Wait<std::vector<SrvRecord>>(
        [&](auto cb) { LookupSrv(name, deadline, std::move(cb)); });
  }
  absl::StatusOr<std::vector<IpAddress>> LookupHostAndWait(absl::string_view host,
                                                           absl::Time deadline) {
    return async::Wait<std::vector<IpAddress>>(
        [&](auto cb) { LookupHost(host, deadline, std::move(cb)); });
  }
};

}  // namespace keyverifier::net

#endif  // KEYVERIFIER_SERVICE_NET_RESOLVER_H_
