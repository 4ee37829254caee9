#include "service/net/well_known_fetcher.h"

#include <curl/curl.h>

#include <set>

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

absl::StatusOr<WellKnownResponse> HttpsWellKnownFetcher::Fetch(absl::string_view hostname,
                                                               absl::Time deadline) {
  UrlParts at{"https", std::string(hostname), options_.port, "/.well-known/matrix/server"};
  std::set<std::string> seen;
  for (int hop = 0;; ++hop) {
    const std::string authority = Authority(at.host, at.port, 443);
    const std::string url = absl::StrCat("https://", authority, at.path);
    if (!seen.insert(url).second) {
      return absl::UnavailableError(absl::StrCat(".well-known of ", hostname,
                                                 ": redirect loop at ", url));
    }
    std::vector<IpAddress> addresses;
    if (absl::StatusOr<IpAddress> ip = ParseIpAddress(at.host); ip.ok()) {
      addresses.push_back(*ip);
    } else {
      absl::StatusOr<std::vector<IpAddress>> found = resolver_.LookupHost(at.host, deadline);
      if (!found.ok()) return found.status();
      addresses = *std::move(found);
    }
    absl::StatusOr<HttpResponse> response =
        absl::UnavailableError(absl::StrCat("no address for ", at.host));
    std::vector<std::string> failures;
    for (const IpAddress& a : addresses) {
      HttpRequest req;
      req.host_header = authority;
      req.path = at.path;
      req.connect_to = {a, at.port};
      req.tls_name = at.host;
      req.max_response_bytes = kMaxWellKnownBytes;
      response = http_.Send(req, deadline);
      if (response.ok() || absl::IsDeadlineExceeded(response.status())) break;
      failures.push_back(std::string(response.status().message()));
    }
    if (!response.ok()) {
      if (failures.size() > 1) {
        return absl::Status(response.status().code(), absl::StrJoin(failures, "; "));
      }
      return response.status();
    }
    const int status = response->status;
    if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
      if (hop >= options_.max_redirects) {
        return absl::UnavailableError(absl::StrCat(".well-known of ", hostname, ": more than ",
                                                   options_.max_redirects, " redirects"));
      }
      auto location = response->headers.find("location");
      if (location == response->headers.end()) {
        return absl::UnavailableError(
            absl::StrCat(".well-known of ", hostname, ": redirect without Location"));
      }
      absl::StatusOr<UrlParts> next = ResolveUrl(url, location->second);
      if (!next.ok()) return absl::UnavailableError(next.status().message());
      if (next->scheme != "https") {
        return absl::UnavailableError(absl::StrCat(
            ".well-known of ", hostname, ": redirect to a non-https URL ", location->second));
      }
      at = *std::move(next);
      continue;
    }
    WellKnownResponse out;
    out.status = status;
    out.body = std::move(response->body);
    if (auto cc = response->headers.find("cache-control"); cc != response->headers.end()) {
      out.cache_control = cc->second;
    }
    return out;
  }
}

}  // namespace keyverifier::net
