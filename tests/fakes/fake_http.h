// A scripted HTTP client: answers by "METHOD host_header path", records
// every request. Unscripted requests fail like a refused connection. It
// answers inline: the callback has run when Send returns (never under the
// fake's lock, so a callback may send again).
#ifndef KEYVERIFIER_TESTS_FAKES_FAKE_HTTP_H_
#define KEYVERIFIER_TESTS_FAKES_FAKE_HTTP_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "service/async/callback.h"
#include "service/net/http_client.h"

namespace keyverifier::testing {

class FakeHttpClient : public net::HttpClient {
 public:
  static std::string Key(const std::string& method, const std::string& host,
                         const std::string& path) {
    return absl::StrCat(method, " ", host, " ", path);
  }
  void Set(const std::string& method, const std::string& host, const std::string& path,
           int status, std::string body) {
    absl::MutexLock lock(&mu_);
    net::HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    answers_[Key(method, host, path)] = std::move(r);
  }
  void Fail(const std::string& method, const std::string& host, const std::string& path,
            absl::Status status) {
    absl::MutexLock lock(&mu_);
    answers_[Key(method, host, path)] = std::move(status);
  }
  // Fails requests to this address whatever they ask.
  void FailAddress(const std::string& endpoint, absl::Status status) {
    absl::MutexLock lock(&mu_);
    failing_[endpoint] = std::move(status);
  }

  void Send(const net::HttpRequest& req, absl::Time,
            async::Callback<net::HttpResponse> done) override {
    absl::StatusOr<net::HttpResponse> answer = absl::UnavailableError(
        absl::StrCat("connection to ", req.connect_to.ToString(), " refused"));
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(req);
      if (auto f = failing_.find(req.connect_to.ToString()); f != failing_.end()) {
        answer = f->second;
      } else if (auto it = answers_.find(Key(req.method, req.host_header, req.path));
                 it != answers_.end()) {
        answer = it->second;
      }
    }
    done(std::move(answer));
  }
  std::vector<net::HttpRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, absl::StatusOr<net::HttpResponse>> answers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> failing_ ABSL_GUARDED_BY(mu_);
  std::vector<net::HttpRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace keyverifier::testing

#endif  // KEYVERIFIER_TESTS_FAKES_FAKE_HTTP_H_
