// Test doubles at the DNS and .well-known seams: scripted answers keyed by
// name, with a count of lookups. They answer inline: the callback has run
// when the call returns (never under the fake's lock, so a callback may call
// the fake again).
#ifndef KEYVERIFIER_TESTS_FAKES_FAKE_NET_H_
#define KEYVERIFIER_TESTS_FAKES_FAKE_NET_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "service/async/callback.h"
#include "service/net/discovery.h"
#include "service/net/resolver.h"

namespace keyverifier::testing {

class FakeResolver : public net::Resolver {
 public:
  void AddSrv(const std::string& name, std::vector<net::SrvRecord> records) {
    absl::MutexLock lock(&mu_);
    srv_[name] = absl::StatusOr<std::vector<net::SrvRecord>>(std::move(records));
  }
  void FailSrv(const std::string& name, absl::Status status) {
    absl::MutexLock lock(&mu_);
    srv_[name] = std::move(status);
  }
  void AddHost(const std::string& host, const std::vector<std::string>& addresses) {
    std::vector<net::IpAddress> ips;
    for (const std::string& a : addresses) ips.push_back(*net::ParseIpAddress(a));
    absl::MutexLock lock(&mu_);
    hosts_[host] = std::move(ips);
  }

  void LookupSrv(absl::string_view name, absl::Time,
                 async::Callback<std::vector<net::SrvRecord>> done) override {
    absl::StatusOr<std::vector<net::SrvRecord>> answer =
        absl::NotFoundError(absl::StrCat("no SRV for ", name));
    {
      absl::MutexLock lock(&mu_);
      lookups_.push_back(absl::StrCat("SRV ", name));
      if (auto it = srv_.find(std::string(name)); it != srv_.end()) answer = it->second;
    }
    done(std::move(answer));
  }
  void LookupHost(absl::string_view host, absl::Time,
                  async::Callback<std::vector<net::IpAddress>> done) override {
    absl::StatusOr<std::vector<net::IpAddress>> answer =
        absl::NotFoundError(absl::StrCat("no address for ", host));
    {
      absl::MutexLock lock(&mu_);
      lookups_.push_back(absl::StrCat("A/AAAA ", host));
      if (auto it = hosts_.find(std::string(host)); it != hosts_.end()) answer = it->second;
    }
    done(std::move(answer));
  }
  std::vector<std::string> lookups() {
    absl::MutexLock lock(&mu_);
    return lookups_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, absl::StatusOr<std::vector<net::SrvRecord>>> srv_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<net::IpAddress>> hosts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> lookups_ ABSL_GUARDED_BY(mu_);
};

// Answers .well-known requests from a table; unknown hosts fail like a
// connection refused.
class FakeWellKnownFetcher : public net::WellKnownFetcher {
 public:
  void Set(const std::string& host, int status, std::string body,
           std::string cache_control = "") {
    absl::MutexLock lock(&mu_);
    answers_[host] = net::WellKnownResponse{status, std::move(body),
                                            std::move(cache_control)};
  }
  void Clear(const std::string& host) {
    absl::MutexLock lock(&mu_);
    answers_.erase(host);
  }
  void Fetch(absl::string_view host, absl::Time,
             async::Callback<net::WellKnownResponse> done) override {
    absl::StatusOr<net::WellKnownResponse> answer =
        absl::UnavailableError(absl::StrCat("connection to ", host, " refused"));
    {
      absl::MutexLock lock(&mu_);
      ++fetches_[std::string(host)];
      if (auto it = answers_.find(std::string(host)); it != answers_.end()) {
        answer = it->second;
      }
    }
    done(std::move(answer));
  }
  int fetches(const std::string& host) {
    absl::MutexLock lock(&mu_);
    return fetches_[host];
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, net::WellKnownResponse> answers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> fetches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_FAKES_FAKE_NET_H_
