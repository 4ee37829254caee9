#include "service/net/well_known_fetcher.h"

#include <curl/curl.h>

#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace keyverifier::net {
namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlStringDeleter {
  void operator()(char* s) const { curl_free(s); }
};

absl::StatusOr<std::string> Part(CURLU* u, CURLUPart part, bool optional = false) {
  char* raw = nullptr;
  CURLUcode rc = curl_url_get(u, part, &raw, part == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0);
  std::unique_ptr<char, CurlStringDeleter> owned(raw);
  if (rc != CURLUE_OK) {
    if (optional) return std::string();
    return absl::InvalidArgumentError(curl_url_strerror(rc));
  }
  return std::string(raw);
}

// The URL authority: HostPort without the scheme's default port.
std::string Authority(const std::string& host, uint16_t port, uint16_t default_port) {
  if (port != default_port) return HostPort(host, port);
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
}

}  // namespace

std::string UrlEscape(absl::string_view s) {
  char* raw = curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size()));
  std::unique_ptr<char, CurlStringDeleter> owned(raw);
  return raw ? std::string(raw) : std::string();
}

absl::StatusOr<UrlParts> ResolveUrl(absl::string_view base, absl::string_view location) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (u == nullptr) return absl::InternalError("curl_url failed");
  const std::string b(base), l(location);
  if (curl_url_set(u.get(), CURLUPART_URL, b.c_str(), 0) != CURLUE_OK) {
    return absl::InvalidArgumentError(absl::StrCat("bad URL ", base));
  }
  if (CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, l.c_str(), 0); rc != CURLUE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad redirect location \"", location, "\": ", curl_url_strerror(rc)));
  }
  UrlParts out;
  absl::StatusOr<std::string> scheme = Part(u.get(), CURLUPART_SCHEME);
  absl::StatusOr<std::string> host = Part(u.get(), CURLUPART_HOST);
  absl::StatusOr<std::string> port = Part(u.get(), CURLUPART_PORT);
  absl::StatusOr<std::string> path = Part(u.get(), CURLUPART_PATH);
  absl::StatusOr<std::string> query = Part(u.get(), CURLUPART_QUERY, true);
  for (const auto* s : {&scheme, &host, &port, &path}) {
    if (!s->ok()) return s->status();
  }
  out.scheme = *scheme;
  out.host = *host;
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  int p = 0;
  if (!absl::SimpleAtoi(*port, &p) || p <= 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in ", location));
  }
  out.port = static_cast<uint16_t>(p);
  out.path = query->empty() ? *path : absl::StrCat(*path, "?", *query);
  return out;
}

namespace {

// One fetch in flight: where it is, and what its hops have seen so far.
// Each step holds a reference; the last callback lets it go.
struct WellKnownFetch {
  WellKnownFetch(HttpClient& http, Resolver& resolver, int max_redirects,
                 absl::string_view hostname, absl::Time deadline,
                 async::Callback<WellKnownResponse> done)
      : http(http), resolver(resolver), max_redirects(max_redirects),
        hostname(hostname), deadline(deadline), done(std::move(done)) {}

  HttpClient& http;
  Resolver& resolver;
  const int max_redirects;
  const std::string hostname;
  const absl::Time deadline;
  async::Callback<WellKnownResponse> done;

  UrlParts at;
  int hop = 0;
  std::set<std::string> seen;  // URLs asked so far
  // This hop.
  std::string authority;
  std::string url;
  std::vector<IpAddress> addresses;
  size_t next = 0;  // the address to try next
  std::vector<std::string> failures;
  absl::Status last;
};
using FetchRef = std::shared_ptr<WellKnownFetch>;

void StartHop(FetchRef f);
void OnResponse(FetchRef f, absl::StatusOr<HttpResponse> response);

void Answer(const FetchRef& f, absl::StatusOr<WellKnownResponse> result) {
  async::Callback<WellKnownResponse> done = std::move(f->done);
  done(std::move(result));
}

// Sends this hop's request to its next address; when none is left, fails
// with what the addresses said.
void SendToNext(FetchRef f) {
  if (f->next >= f->addresses.size()) {
    if (f->failures.size() > 1) {
      return Answer(f, absl::Status(f->last.code(), absl::StrJoin(f->failures, "; ")));
    }
    return Answer(f, f->last);
  }
  HttpRequest req;
  req.host_header = f->authority;
  req.path = f->at.path;
  req.connect_to = {f->addresses[f->next++], f->at.port};
  req.tls_name = f->at.host;
  req.max_response_bytes = kMaxWellKnownBytes;
  HttpClient& http = f->http;
  const absl::Time deadline = f->deadline;
  http.Send(req, deadline, [f = std::move(f)](absl::StatusOr<HttpResponse> r) mutable {
    OnResponse(std::move(f), std::move(r));
  });
}

void StartHop(FetchRef f) {
  f->authority = Authority(f->at.host, f->at.port, 443);
  f->url = absl::StrCat("https://", f->authority, f->at.path);
  if (!f->seen.insert(f->url).second) {
    return Answer(f, absl::UnavailableError(absl::StrCat(".well-known of ", f->hostname,
                                                        ": redirect loop at ", f->url)));
  }
  f->addresses.clear();
  f->next = 0;
  f->failures.clear();
  f->last = absl::UnavailableError(absl::StrCat("no address for ", f->at.host));
  if (absl::StatusOr<IpAddress> ip = ParseIpAddress(f->at.host); ip.ok()) {
    f->addresses.push_back(*ip);
    return SendToNext(std::move(f));
  }
  Resolver& resolver = f->resolver;
  const std::string host = f->at.host;
  const absl::Time deadline = f->deadline;
  resolver.LookupHost(host, deadline,
                      [f = std::move(f)](absl::StatusOr<std::vector<IpAddress>> found) mutable {
                        if (!found.ok()) return Answer(f, found.status());
                        f->addresses = *std::move(found);
                        SendToNext(std::move(f));
                      });
}

void OnResponse(FetchRef f, absl::StatusOr<HttpResponse> response) {
  if (!response.ok()) {
    f->last = response.status();
    // The deadline, or a shutdown, ends the hop: no other address would fare
    // better.
    if (absl::IsDeadlineExceeded(f->last) || absl::IsCancelled(f->last)) {
      f->next = f->addresses.size();
    } else {
      f->failures.push_back(std::string(f->last.message()));
    }
    return SendToNext(std::move(f));
  }
  const int status = response->status;
  if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
    if (f->hop >= f->max_redirects) {
      return Answer(f, absl::UnavailableError(absl::StrCat(".well-known of ", f->hostname,
                                                          ": more than ", f->max_redirects,
                                                          " redirects")));
    }
    auto location = response->headers.find("location");
    if (location == response->headers.end()) {
      return Answer(f, absl::UnavailableError(absl::StrCat(".well-known of ", f->hostname,
                                                          ": redirect without Location")));
    }
    absl::StatusOr<UrlParts> next = ResolveUrl(f->url, location->second);
    if (!next.ok()) return Answer(f, absl::UnavailableError(next.status().message()));
    if (next->scheme != "https") {
      return Answer(f, absl::UnavailableError(
                           absl::StrCat(".well-known of ", f->hostname,
                                        ": redirect to a non-https URL ", location->second)));
    }
    f->at = *std::move(next);
    ++f->hop;
    return StartHop(std::move(f));
  }
  WellKnownResponse out;
  out.status = status;
  out.body = std::move(response->body);
  if (auto cc = response->headers.find("cache-control"); cc != response->headers.end()) {
    out.cache_control = cc->second;
  }
  Answer(f, std::move(out));
}

}  // namespace

void HttpsWellKnownFetcher::Fetch(absl::string_view hostname, absl::Time deadline,
                                  async::Callback<WellKnownResponse> done) {
  auto f = std::make_shared<WellKnownFetch>(http_, resolver_, options_.max_redirects,
                                            hostname, deadline, std::move(done));
  f->at = UrlParts{"https", std::string(hostname), options_.port, "/.well-known/matrix/server"};
  StartHop(std::move(f));
}

}  // namespace keyverifier::net
