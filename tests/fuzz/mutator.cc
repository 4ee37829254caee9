#include "tests/fuzz/mutator.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace keyverifier::fuzz {
namespace {

// Bytes and tokens that tend to matter to the parsers under test.
constexpr unsigned char kBytes[] = {0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f, ' ', '"',
                                    '\\', '/', ',', ':', ';', '=', '[', ']',
                                    '{', '}', '.', '-', '+', '0', '9', 'e',
                                    'E', 'u', '$', '@', '!', '%', 0x7f, 0x80,
                                    0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xef, 0xf0, 0xf4,
                                    0xf5, 0xff};

const char* const kTokens[] = {
    // JSON
    "null", "true", "false", "{}", "[]", "{\"a\":1}", "[[[[", "]]]]", "\"\":",
    "\\u0000", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\uFFFF", "\\\"", "\\\\",
    "\\/", "\\n", "\\x", "-0", "0", "1.5", "1e10", "1E+2", "-1e-5", "1e400",
    "9007199254740991", "9007199254740992", "-9007199254740992",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "123456789012345678901234567890", "0.0", "00", "01", ".5", "+1",
    // UTF-8 edge cases: overlong, surrogate, beyond U+10FFFF, BOM, NBSP
    "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xef\xbb\xbf", "\xc2\xa0",
    "\xe2\x80\xa8", "\xf0\x9f\x98\x80",
    // Matrix fields
    "\"signatures\":", "\"unsigned\":", "\"hashes\":", "\"content\":",
    "\"sender\":", "\"type\":", "\"event_id\":", "\"origin_server_ts\":",
    "\"state_key\":", "\"membership\":", "\"join_authorised_via_users_server\":",
    "\"third_party_invite\":", "\"verify_keys\":", "\"old_verify_keys\":",
    "\"valid_until_ts\":", "\"expired_ts\":", "\"server_name\":",
    "\"server_keys\":", "\"m.server\":", "\"tls_fingerprints\":",
    "\"m.room.member\"", "\"m.room.create\"", "\"m.room.join_rules\"",
    "\"m.room.power_levels\"", "\"m.room.redaction\"", "\"m.room.aliases\"",
    "\"m.room.history_visibility\"", "ed25519:", "ed25519:1", "sha256",
    "@a:domain", "$0:domain", ":8448", ":0", ":65536", "[::1]", "[::ffff:127.0.0.1]",
    "127.0.0.1", "::ffff:", "/96", "/128", "/0", "64:ff9b::", "2002:", "2001:0:",
    // X-Matrix and HTTP headers
    "X-Matrix ", "x-matrix ", "origin=", "destination=", "key=", "sig=", ",,",
    " , ", "=\"", "\"\"", "\t", "max-age=", "no-store", "no-cache", "s-maxage=",
    // PEM
    "-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n", "MII", "==",
};

}  // namespace

Mutator::Mutator(uint64_t seed, std::vector<std::string> seeds)
    : rng_(seed), seeds_(std::move(seeds)) {}

uint64_t Mutator::Below(uint64_t n) { return rng_() % n; }

std::string Mutator::Next() {
  std::string s;
  if (!recent_.empty() && Below(4) == 0) {
    s = recent_[Below(recent_.size())];
  } else {
    s = seeds_[Below(seeds_.size())];
  }
  const uint64_t edits = 1 + Below(4);
  for (uint64_t i = 0; i < edits; ++i) Edit(&s);
  if (s.size() > kMaxSize) s.resize(kMaxSize);
  if (recent_.size() < 64) {
    recent_.push_back(s);
  } else {
    recent_[Below(recent_.size())] = s;
  }
  return s;
}

void Mutator::Edit(std::string* s) {
  const size_t n = s->size();
  switch (Below(9)) {
    case 0:  // flip a bit
      if (n > 0) (*s)[Below(n)] ^= static_cast<char>(1u << Below(8));
      break;
    case 1:  // set a byte
      if (n > 0) (*s)[Below(n)] = static_cast<char>(kBytes[Below(std::size(kBytes))]);
      break;
    case 2:  // insert a byte
      s->insert(s->begin() + Below(n + 1),
                static_cast<char>(Below(2) ? kBytes[Below(std::size(kBytes))] : Below(256)));
      break;
    case 3:  // delete a range
      if (n > 0) {
        const size_t at = Below(n);
        s->erase(at, 1 + Below(std::min<size_t>(n - at, 16)));
      }
      break;
    case 4:  // duplicate a range elsewhere
      if (n > 0) {
        const size_t at = Below(n);
        const std::string chunk = s->substr(at, 1 + Below(std::min<size_t>(n - at, 64)));
        s->insert(Below(n + 1), chunk);
      }
      break;
    case 5:
    case 6:  // insert or overwrite with a token
    {
      const std::string token = kTokens[Below(std::size(kTokens))];
      const size_t at = Below(n + 1);
      if (Below(2) == 0 || at == n) {
        s->insert(at, token);
      } else {
        s->replace(at, std::min(token.size(), n - at), token);
      }
      break;
    }
    case 7:  // splice: a prefix of this input, a suffix of a seed
    {
      const std::string& other = seeds_[Below(seeds_.size())];
      const size_t keep = Below(n + 1);
      const size_t from = Below(other.size() + 1);
      *s = s->substr(0, keep) + other.substr(from);
      break;
    }
    default:  // truncate
      if (n > 0) s->resize(Below(n));
      break;
  }
}

}  // namespace keyverifier::fuzz
