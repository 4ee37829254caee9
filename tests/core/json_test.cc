// The JSON parser and canonical encoder, table-driven: each case gives the
// exact canonical output or a substring of the exact error.
#include "service/core/canonical_json.h"
#include "service/core/json_parser.h"
#include "service/core/json_value.h"
#include "service/core/json_view.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace keyverifier::core {
namespace {

using std::string_literals::operator""s;

constexpr NumberPolicy kStrict = NumberPolicy::kStrict;
constexpr NumberPolicy kSpec = NumberPolicy::kSpec;
constexpr NumberPolicy kLegacy = NumberPolicy::kLegacy;

const char* PolicyName(NumberPolicy p) {
  switch (p) {
    case kStrict:
      return "strict";
    case kSpec:
      return "spec";
    case kLegacy:
      return "legacy";
  }
  return "?";
}

// Parses and encodes; returns the canonical bytes, or "ERROR: " + the message
// of whichever step failed, so one string comparison checks either outcome.
std::string Canon(const std::string& json, NumberPolicy policy = kSpec,
                  const ParseOptions& options = {}) {
  absl::StatusOr<Value> v = ParseJson(json, options);
  if (!v.ok()) {
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    return "ERROR: " + std::string(v.status().message());
  }
  absl::StatusOr<std::string> out = CanonicalJson(*v, policy);
  if (!out.ok()) {
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    return "ERROR: " + std::string(out.status().message());
  }
  // Canonical JSON is a fixed point: parsing and encoding it changes nothing.
  absl::StatusOr<Value> again = ParseJson(*out);
  EXPECT_TRUE(again.ok()) << again.status();
  if (again.ok()) {
    absl::StatusOr<std::string> twice = CanonicalJson(*again, policy);
    EXPECT_TRUE(twice.ok() && *twice == *out) << *out;
  }
  return *out;
}

// One input, its expected canonical output, or a substring of the expected
// error ("ERROR: ..." then has to appear in the message).
struct Case {
  std::string in;
  std::string want;
};

void ExpectCanon(const std::vector<Case>& cases, NumberPolicy policy,
                 const ParseOptions& options = {}) {
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string("policy ") + PolicyName(policy) + ", input: " +
                 (c.in.size() > 200 ? c.in.substr(0, 200) + "..." : c.in));
    std::string got = Canon(c.in, policy, options);
    if (c.want.rfind("ERROR: ", 0) == 0) {
      EXPECT_EQ(got.rfind("ERROR: ", 0), 0u) << "accepted as " << got;
      EXPECT_NE(got.find(c.want.substr(7)), std::string::npos)
          << "error \"" << got << "\" lacks \"" << c.want.substr(7) << "\"";
    } else {
      EXPECT_EQ(got, c.want);
    }
  }
}

// ------------------------------------------------------------ spec examples

// Matrix spec appendices, "Canonical JSON", "Examples": every input/output
// pair.
TEST(CanonicalJsonTest, SpecAppendixExamples) {
  const std::vector<Case> cases = {
      {"{}", "{}"},
      {"{\n    \"one\": 1,\n    \"two\": \"Two\"\n}",
       R"({"one":1,"two":"Two"})"},
      {"{\n    \"b\": \"2\",\n    \"a\": \"1\"\n}", R"({"a":"1","b":"2"})"},
      {R"({"b":"2","a":"1"})", R"({"a":"1","b":"2"})"},
      {R"({
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
})",
       R"({"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}})"},
      {"{\n    \"a\": \"日本語\"\n}", "{\"a\":\"日本語\"}"},
      {"{\n    \"本\": 2,\n    \"日\": 1\n}", "{\"日\":1,\"本\":2}"},
      {"{\n    \"a\": \"\\u65E5\"\n}", "{\"a\":\"日\"}"},
      {"{\n    \"a\": null\n}", R"({"a":null})"},
      {"{\n    \"a\": -0,\n    \"b\": 1e10\n}", R"({"a":0,"b":10000000000})"},
  };
  ExpectCanon(cases, kSpec);
}

TEST(CanonicalJsonTest, SpecExampleWithExponentPerPolicy) {
  const std::string in = R"({"a": -0, "b": 1e10})";
  EXPECT_EQ(Canon(in, kSpec), R"({"a":0,"b":10000000000})");
  EXPECT_EQ(Canon(in, kLegacy), R"({"a":0,"b":10000000000.0})");
  EXPECT_EQ(Canon(in, kStrict),
            "ERROR: number at $.b: 1e10 has a fraction or exponent, which "
            "canonical JSON forbids");
}

// ------------------------------------------------------------ strings

TEST(CanonicalJsonTest, EscapesOnlyWhatTheGrammarRequires) {
  const std::vector<Case> cases = {
      {R"(["\"", "\\", "\/", "/"])", R"(["\"","\\","/","/"])"},
      {R"(["\b\f\n\r\t"])", R"(["\b\f\n\r\t"])"},
      // Short escapes are used whenever one exists, however the input spelled
      // it.
      {R"(["\u0008\u000C\u000a\u000D\u0009\u0022\u005c"])",
       R"(["\b\f\n\r\t\"\\"])"},
      // Other control characters: \u00XX with lowercase hex.
      {R"(["\u0000", "\u001F", "\u000B", "\u001b", "\u0001"])",
       R"(["\u0000","\u001f","\u000b","\u001b","\u0001"])"},
      // Everything else is written raw: ASCII, DEL, C1 controls, U+2028/2029,
      // BOM, noncharacters, non-BMP.
      {R"(["\u0041\u007e", "\u007f", "\u0080\u009f", "\u2028\u2029"])",
       "[\"A~\",\"\x7f\",\"\xc2\x80\xc2\x9f\",\"\xe2\x80\xa8\xe2\x80\xa9\"]"},
      {R"(["\u00e9", "\u00C9", "\ufeff", "\uFFFF", "\uffFE"])",
       "[\"\xc3\xa9\",\"\xc3\x89\",\"\xef\xbb\xbf\",\"\xef\xbf\xbf\","
       "\"\xef\xbf\xbe\"]"},
      {"[\"\x7f\xe2\x80\xa8\"]", "[\"\x7f\xe2\x80\xa8\"]"},
      // Surrogate pairs, either case, become the 4-byte UTF-8 of one code
      // point.
      {R"(["\ud83d\ude00", "\uD83D\uDE00", "\uDBFF\uDFFF", "\ud800\udc00"])",
       "[\"\xf0\x9f\x98\x80\",\"\xf0\x9f\x98\x80\",\"\xf4\x8f\xbf\xbf\","
       "\"\xf0\x90\x80\x80\"]"},
      {"[\"\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"]",
       "[\"\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"]"},
      // An escaped NUL inside a string and a key is kept, not a terminator.
      {R"({"a\u0000b":"c\u0000d"})", R"({"a\u0000b":"c\u0000d"})"},
  };
  ExpectCanon(cases, kStrict);
}

TEST(CanonicalJsonTest, EveryControlCharacter) {
  for (int c = 0; c < 0x20; ++c) {
    char hex[8];
    snprintf(hex, sizeof(hex), "\\u%04X", c);
    std::string want;
    switch (c) {
      case '\b':
        want = "\\b";
        break;
      case '\f':
        want = "\\f";
        break;
      case '\n':
        want = "\\n";
        break;
      case '\r':
        want = "\\r";
        break;
      case '\t':
        want = "\\t";
        break;
      default: {
        char lower[8];
        snprintf(lower, sizeof(lower), "\\u%04x", c);
        want = lower;
      }
    }
    EXPECT_EQ(Canon("[\""s + hex + "\"]"), "[\"" + want + "\"]") << c;
    // Encoding a value built in code escapes the same way.
    EXPECT_EQ(ToJson(Value::String(std::string(1, static_cast<char>(c)))),
              "\"" + want + "\"");
    // Unescaped, a control character is not allowed in a string.
    std::string raw = "[\"a" + std::string(1, static_cast<char>(c)) + "\"]";
    std::string got = Canon(raw);
    EXPECT_EQ(got.rfind("ERROR: invalid JSON at byte 3", 0), 0u)
        << c << ": " << got;
  }
}

TEST(CanonicalJsonTest, RawControlCharacterMessage) {
  EXPECT_EQ(
      Canon("{\"a\":\"x\x01\"}"),
      "ERROR: invalid JSON at byte 7: unescaped control character 0x01 in "
      "string");
  EXPECT_EQ(
      Canon("[\"\t\"]"),
      "ERROR: invalid JSON at byte 2: unescaped control character 0x09 in "
      "string");
}

TEST(CanonicalJsonTest, InvalidEscapes) {
  ExpectCanon({{R"(["\x41"])", "ERROR: invalid JSON at byte 2"},
               {R"(["\'"])", "ERROR: invalid JSON at byte 2"},
               {R"(["\U0041"])", "ERROR: invalid JSON at byte 2"},
               {R"(["\u12"])", "ERROR: invalid JSON at byte "},
               {R"(["\u12G4"])", "ERROR: invalid JSON at byte "},
               {R"(["\)", "ERROR: invalid JSON at byte "},
               {R"(["abc)", "ERROR: invalid JSON at byte "}},
              kStrict);
}

// ------------------------------------------------------------ key order

TEST(CanonicalJsonTest, KeysSortByCodePoint) {
  const std::vector<Case> cases = {
      {R"({"b":1,"a":2,"":3,"aa":4,"A":5,"a\u0000":6})",
       R"({"":3,"A":5,"a":2,"a\u0000":6,"aa":4,"b":1})"},
      // Code point order, not UTF-16 order: U+FF61 < U+1F600, although its
      // UTF-16 form (FF61) sorts after the surrogate D83D of U+1F600.
      {R"({"\ud83d\ude00":1,"\uff61":2})",
       "{\"\xef\xbd\xa1\":2,\"\xf0\x9f\x98\x80\":1}"},
      {"{\"\xf0\x90\x80\x80\":1,\"\xee\x80\x80\":2,\"\xef\xbf\xbf\":3}",
       "{\"\xee\x80\x80\":2,\"\xef\xbf\xbf\":3,\"\xf0\x90\x80\x80\":1}"},
      // Not by any normalisation or collation: e + U+0301 before é, z before é.
      {"{\"\xc3\xa9\":1,\"z\":2,\"e\xcc\x81\":3,\"\\u00c9\":4}",
       "{\"e\xcc\x81\":3,\"z\":2,\"\xc3\x89\":4,\"\xc3\xa9\":1}"},
      // Escaped keys sort by what they decode to.
      {R"({"\u0062":1,"\u0061":2})", R"({"a":2,"b":1})"},
      // Nested objects sort too; arrays keep their order.
      {R"({"z":{"y":[3,1,2],"x":{"b":0,"a":0}},"a":[{"b":1,"a":2}]})",
       R"({"a":[{"a":2,"b":1}],"z":{"x":{"a":0,"b":0},"y":[3,1,2]}})"},
  };
  ExpectCanon(cases, kStrict);
}

TEST(CanonicalJsonTest, DuplicateKeysAreRejected) {
  const std::vector<Case> cases = {
      {R"({"a":1,"a":2})", R"(ERROR: duplicate key "a" in object)"},
      {R"({"a":1,"a":1})", R"(ERROR: duplicate key "a" in object)"},
      {R"({"a":1,"\u0061":2})", R"(ERROR: duplicate key "a" in object)"},
      {"{\"\xc3\xa9\":1,\"\\u00E9\":2}",
       "ERROR: duplicate key \"\xc3\xa9\" in object"},
      {R"({"\ud83d\ude00":1,"\uD83D\uDE00":2})", "ERROR: duplicate key"},
      {R"({"x":[{"b":{},"a":1,"b":[]}]})",
       R"(ERROR: duplicate key "b" in object)"},
      {R"({"a":{"b":1},"a":2})", R"(ERROR: duplicate key "a" in object)"},
      // Same prefix is no duplicate.
      {R"({"a":1,"a\u0000":2})", R"({"a":1,"a\u0000":2})"},
  };
  ExpectCanon(cases, kStrict);
}

// ------------------------------------------------------------ UTF-8

TEST(ParseJsonTest, RejectsInvalidUtf8WithOffset) {
  const std::vector<Case> cases = {
      {"[\"\xc0\xaf\"]",
       "ERROR: invalid JSON at byte 2: invalid UTF-8"},  // overlong /
      {"[\"\xc1\xbf\"]", "ERROR: invalid JSON at byte 2: invalid UTF-8"},
      {"[\"\xe0\x80\xaf\"]", "ERROR: invalid JSON at byte 2: invalid UTF-8"},
      {"[\"\xf0\x80\x80\xaf\"]",
       "ERROR: invalid JSON at byte 2: invalid UTF-8"},
      {"[\"ab\xe2\x82\"]",
       "ERROR: invalid JSON at byte 4: invalid UTF-8"},  // truncated
      {"[\"ab\xe2\x82", "ERROR: invalid JSON at byte 4: invalid UTF-8"},
      {"[\"\xf0\x9f\x98\"]", "ERROR: invalid JSON at byte 2: invalid UTF-8"},
      {"[\"\xed\xa0\x80\"]",
       "ERROR: invalid JSON at byte 2: invalid UTF-8"},  // U+D800
      {"[\"\xed\xbf\xbf\"]",
       "ERROR: invalid JSON at byte 2: invalid UTF-8"},  // U+DFFF
      {"[\"\xed\xa0\xbd\xed\xb8\x80\"]",                 // CESU-8 pair
       "ERROR: invalid JSON at byte 2: invalid UTF-8"},
      {"[\"\xf4\x90\x80\x80\"]",
       "ERROR: invalid JSON at byte 2: invalid UTF-8"},
      {"[\"\xf5\x80\x80\x80\"]",
       "ERROR: invalid JSON at byte 2: invalid UTF-8"},
      {"[\"\xf8\x88\x80\x80\x80\"]",
       "ERROR: invalid JSON at byte 2: invalid UTF-8"},
      {"[\"x\x80\"]",
       "ERROR: invalid JSON at byte 3: invalid UTF-8"},  // lone continuation
      {"[\"\xff\"]", "ERROR: invalid JSON at byte 2: invalid UTF-8"},
      {"{\"k\xfe\":1}",
       "ERROR: invalid JSON at byte 3: invalid UTF-8"},  // in a key
      {"[1]\xff",
       "ERROR: invalid JSON at byte 3: invalid UTF-8"},  // outside strings
      // The largest and smallest of each length are fine.
      {"[\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf"
       "\xbf\"]",
       "[\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf"
       "\xbf\"]"},
      {"[\"\xed\x9f\xbf\xee\x80\x80\"]",
       "[\"\xed\x9f\xbf\xee\x80\x80\"]"},  // around surrogates
  };
  ExpectCanon(cases, kStrict);
}

TEST(ParseJsonTest, RejectsLoneSurrogateEscapes) {
  const std::vector<Case> cases = {
      {R"(["\ud800"])", "ERROR: invalid JSON at byte 2"},
      {R"(["\udc00"])", "ERROR: invalid JSON at byte "},
      {R"(["\uDFFF"])", "ERROR: surrogate"},
      {R"(["\ud800\u0041"])", "ERROR: surrogate"},
      {R"(["\ud800x"])", "ERROR: surrogate"},
      {R"(["\ud800\ud800"])", "ERROR: surrogate"},
      {R"(["\udc00\ud800"])", "ERROR: surrogate"},  // pair in the wrong order
      {R"(["a\udbff"])", "ERROR: surrogate"},
      {R"({"\udc00":1})", "ERROR: surrogate"},
      {R"({"\ud800":1})", "ERROR: surrogate"},
      {R"({"a":["\ude00"]})", "ERROR: surrogate"},
  };
  ExpectCanon(cases, kStrict);
}

// ------------------------------------------------------------ numbers

TEST(CanonicalJsonTest, IntegerLimitsPerPolicy) {
  const std::string kOut = "ERROR: is outside [-(2^53-1), 2^53-1]";
  struct NumberCase {
    std::string in, strict, spec, legacy;
  };
  const std::string k400(400, '9');
  const std::vector<NumberCase> cases = {
      {"0", "0", "0", "0"},
      {"-0", "0", "0", "0"},
      {"1", "1", "1", "1"},
      {"-1", "-1", "-1", "-1"},
      {"9007199254740991", "9007199254740991", "9007199254740991",
       "9007199254740991"},
      {"-9007199254740991", "-9007199254740991", "-9007199254740991",
       "-9007199254740991"},
      {"9007199254740992", kOut, kOut, "9007199254740992"},
      {"-9007199254740992", kOut, kOut, "-9007199254740992"},
      {"9223372036854775807", kOut, kOut, "9223372036854775807"},
      {"-9223372036854775808", kOut, kOut, "-9223372036854775808"},
      {"9223372036854775808", kOut, kOut, "9223372036854775808"},
      {"-9223372036854775809", kOut, kOut, "-9223372036854775809"},
      {"18446744073709551616", kOut, kOut, "18446744073709551616"},
      {"123456789012345678901234567890", kOut, kOut,
       "123456789012345678901234567890"},
      // Beyond a double's range: Python keeps such integers exactly.
      {"1" + std::string(308, '0'), kOut, kOut, "1" + std::string(308, '0')},
      {k400, kOut, kOut, k400},
      {"-" + k400, kOut, kOut, "-" + k400},
  };
  for (const NumberCase& c : cases) {
    std::string in = "[" + c.in + "]";
    ExpectCanon({{in, c.strict[0] == 'E' ? c.strict : "[" + c.strict + "]"}},
                kStrict);
    ExpectCanon({{in, c.spec[0] == 'E' ? c.spec : "[" + c.spec + "]"}}, kSpec);
    ExpectCanon({{in, "[" + c.legacy + "]"}}, kLegacy);
  }
  EXPECT_EQ(
      Canon("[9007199254740992]", kStrict),
      "ERROR: number at $[0]: 9007199254740992 is outside [-(2^53-1), 2^53-1]");
}

TEST(CanonicalJsonTest, FractionsAndExponentsPerPolicy) {
  const std::string kForbidden =
      "ERROR: has a fraction or exponent, which canonical JSON forbids";
  const std::string kNotInt = "ERROR: is not an integer in [-(2^53-1), 2^53-1]";
  const std::string kNoDouble = "ERROR: does not fit in a double";
  struct NumberCase {
    std::string in, spec, legacy;  // kStrict rejects them all
  };
  const std::vector<NumberCase> cases = {
      {"1e10", "10000000000", "10000000000.0"},
      {"1E10", "10000000000", "10000000000.0"},
      {"1e+10", "10000000000", "10000000000.0"},
      {"1.5e-7", kNotInt, "1.5e-07"},
      {"1e16", kNotInt, "1e+16"},
      {"1e15", "1000000000000000", "1000000000000000.0"},
      {"0.1", kNotInt, "0.1"},
      {"1.0", "1", "1.0"},
      {"-1.0", "-1", "-1.0"},
      {"-0.0", "0", "-0.0"},
      {"0.0", "0", "0.0"},
      {"0e0", "0", "0.0"},
      {"1.5", kNotInt, "1.5"},
      {"1.5e1", "15", "15.0"},
      {"0.5e1", "5", "5.0"},
      {"10e-1", "1", "1.0"},
      {"100e-2", "1", "1.0"},
      {"1E2", "100", "100.0"},
      {"1e-5", kNotInt, "1e-05"},
      {"1e-4", kNotInt, "0.0001"},
      {"123.456", kNotInt, "123.456"},
      {"9007199254740991.0", "9007199254740991", "9007199254740991.0"},
      {"9007199254740991e0", "9007199254740991", "9007199254740991.0"},
      {"90071992547409910e-1", "9007199254740991", "9007199254740991.0"},
      {"9007199254740992.0", kNotInt, "9007199254740992.0"},
      {"-9007199254740992e0", kNotInt, "-9007199254740992.0"},
      // Python's repr: shortest digits that round-trip, exponent from 1e16 on
      // and below 1e-4, at least two exponent digits.
      {"1234567890123456.7", kNotInt, "1234567890123456.8"},
      {"0.30000000000000004", kNotInt, "0.30000000000000004"},
      {"2.675", kNotInt, "2.675"},
      {"1e22", kNotInt, "1e+22"},
      {"1.5e300", kNotInt, "1.5e+300"},
      {"-1.5e-300", kNotInt, "-1.5e-300"},
      {"1e308", kNotInt, "1e+308"},
      {"1.7976931348623157e308", kNotInt, "1.7976931348623157e+308"},
      {"5e-324", kNotInt, "5e-324"},
      {"2.5e-324", kNotInt, "5e-324"},
      {"2e-324", kNotInt, "0.0"},
      {"1e-400", kNotInt, "0.0"},
      {"-1e-400", kNotInt, "-0.0"},
      {"123456789012345678901234567890e-20", kNotInt, "1234567890.1234567"},
      // Too large for a double: Python reads inf, which canonicaljson refuses.
      {"1e309", kNotInt, kNoDouble},
      {"-1e309", kNotInt, kNoDouble},
      {"1.7976931348623159e308", kNotInt, kNoDouble},
      {"1" + std::string(400, '0') + ".0", kNotInt, kNoDouble},
      // Zero stays zero however large the exponent.
      {"0e400", "0", "0.0"},
      {"-0.000e99999", "0", "-0.0"},
      // Exponents far beyond any double, balanced by as many fraction digits.
      {"0." + std::string(999, '0') + "1e1005", "100000", "100000.0"},
      {"0." + std::string(99999, '0') + "1e100005", "100000", "100000.0"},
      {"1" + std::string(99999, '0') + "e-99999", "1", "1.0"},
  };
  for (const NumberCase& c : cases) {
    std::string in = "{\"n\":" + c.in + "}";
    ExpectCanon({{in, kForbidden}}, kStrict);
    ExpectCanon({{in, c.spec[0] == 'E' ? c.spec : "{\"n\":" + c.spec + "}"}},
                kSpec);
    ExpectCanon(
        {{in, c.legacy[0] == 'E' ? c.legacy : "{\"n\":" + c.legacy + "}"}},
        kLegacy);
  }
}

// Numbers too large for RapidJSON alone, among strings that look like numbers
// and ordinary numbers, so each value must end up in its own place.
TEST(CanonicalJsonTest, LongNumbersKeepTheirPlaces) {
  const std::string k400(400, '7');
  const std::string in =
      R"({"a\"1e400":0e400,"b":["\\",1e-400,"0e999",2],"c":-)" + k400 +
      R"(,"d":[1,1e999,3,1.5,)" + k400 + "]}";
  EXPECT_EQ(Canon(in, kLegacy),
            "ERROR: number at $.d[1]: 1e999 does not fit in a double");
  const std::string ok =
      R"({"a\"1e400":0e400,"b":["\\",1e-400,"0e999",2],"c":-)" + k400 +
      R"(,"d":[1,1e99,3,1.5,)" + k400 + "]}";
  EXPECT_EQ(Canon(ok, kLegacy),
            R"({"a\"1e400":0.0,"b":["\\",0.0,"0e999",2],"c":-)" + k400 +
                R"(,"d":[1,1e+99,3,1.5,)" + k400 + "]}");
  EXPECT_EQ(Canon("[1,0e400,2,-0e-999,3]", kSpec), "[1,0,2,0,3]");
  EXPECT_EQ(
      Canon("[1,0e400,2,1e-400,3]", kSpec),
      "ERROR: number at $[3]: 1e-400 is not an integer in [-(2^53-1), 2^53-1]");
  EXPECT_EQ(Canon("[1,0e400,2,1e-400,3]", kStrict),
            "ERROR: number at $[1]: 0e400 has a fraction or exponent, which "
            "canonical JSON forbids");
  // Syntax errors after such a number are still found where they are.
  EXPECT_EQ(
      Canon("[0e400,]", kLegacy).rfind("ERROR: invalid JSON at byte 7", 0), 0u);
  EXPECT_EQ(
      Canon("[0e400 x]", kLegacy).rfind("ERROR: invalid JSON at byte 7", 0),
      0u);
}

TEST(CanonicalJsonTest, NumberErrorsNameThePath) {
  const std::string in = R"({"a":{"b":[1,1.5]},"c":2})";
  EXPECT_EQ(Canon(in, kStrict),
            "ERROR: number at $.a.b[1]: 1.5 has a fraction or exponent, which "
            "canonical JSON forbids");
  EXPECT_EQ(Canon(in, kSpec),
            "ERROR: number at $.a.b[1]: 1.5 is not an integer in [-(2^53-1), "
            "2^53-1]");
  EXPECT_EQ(Canon(in, kLegacy), R"({"a":{"b":[1,1.5]},"c":2})");
  EXPECT_EQ(Canon("[[0,[1e400]]]", kLegacy),
            "ERROR: number at $[0][1][0]: 1e400 does not fit in a double");
  EXPECT_EQ(Canon(R"([{"x":{"y":-9007199254740992}}])", kSpec),
            "ERROR: number at $[0].x.y: -9007199254740992 is outside "
            "[-(2^53-1), 2^53-1]");
}

TEST(CanonicalJsonTest, RejectsInvalidNumbers) {
  ExpectCanon({{"[01]", "ERROR: invalid JSON at byte 2"},
               {"[-01]", "ERROR: invalid JSON at byte 3"},
               {"[1.]", "ERROR: invalid JSON at byte 3"},
               {"[.5]", "ERROR: invalid JSON at byte 1"},
               {"[+1]", "ERROR: invalid JSON at byte 1"},
               {"[1e]", "ERROR: invalid JSON at byte 3"},
               {"[1e+]", "ERROR: invalid JSON at byte 4"},
               {"[-]", "ERROR: invalid JSON at byte 2"},
               {"[--1]", "ERROR: invalid JSON at byte 2"},
               {"[0x10]", "ERROR: invalid JSON at byte 2"},
               {"[NaN]", "ERROR: invalid JSON at byte 1"},
               {"[Infinity]", "ERROR: invalid JSON at byte 1"},
               {"[-Infinity]", "ERROR: invalid JSON at byte 2"},
               {"[1.5.3]", "ERROR: invalid JSON at byte 4"},
               {"[0e400e]", "ERROR: invalid JSON at byte 6"}},
              kLegacy);
}

// ------------------------------------------------------------ structure

TEST(ParseJsonTest, WhitespaceAndTrailingData) {
  const std::vector<Case> cases = {
      {" \t\r\n{ \"a\" :\n[ 1 ,\t2 ] } \r\n", R"({"a":[1,2]})"},
      {"{} x", "ERROR: invalid JSON at byte 3"},
      {"{}{}", "ERROR: invalid JSON at byte 2"},
      {"[1] 2", "ERROR: invalid JSON at byte 4"},
      {"[1],", "ERROR: invalid JSON at byte 3"},
      {"{}\0"s, "ERROR: invalid JSON at byte 2"},
      {"{}\0{\"a\":1}"s, "ERROR: invalid JSON at byte 2"},
      {"{\"a\":\"b\0c\"}"s, "ERROR: invalid JSON at byte 7"},
      {"\0{}"s, "ERROR: invalid JSON at byte 0"},
      {"\f{}", "ERROR: invalid JSON at byte 0"},  // not JSON whitespace
      {"{}\v", "ERROR: invalid JSON at byte 2"},
      {"{}\xc2\xa0", "ERROR: invalid JSON at byte 2"},      // U+00A0
      {"\xef\xbb\xbf{}", "ERROR: invalid JSON at byte 0"},  // a BOM
      {"", "ERROR: invalid JSON at byte 0"},
      {"  ", "ERROR: invalid JSON at byte 2"},
  };
  ExpectCanon(cases, kStrict);
}

// An empty view need not point anywhere (absl::string_view() has no data):
// it is refused like "" (and, under the sanitizer build, without handing a
// null pointer to the C library).
TEST(ParseJsonTest, EmptyViewWithoutData) {
  const absl::string_view nothing;
  ASSERT_EQ(nothing.data(), nullptr);
  absl::StatusOr<Value> v = ParseJson(nothing);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("invalid JSON at byte 0"), absl::string_view::npos)
      << v.status();
}

TEST(ParseJsonTest, SyntaxErrorsNameTheOffset) {
  const std::vector<Case> cases = {
      {R"({"a":1,})", "ERROR: invalid JSON at byte 7"},
      {"[1,2,]", "ERROR: invalid JSON at byte 5"},
      {"[1,2", "ERROR: invalid JSON at byte 4"},
      {R"({"a")", "ERROR: invalid JSON at byte 4"},
      {R"({"a" 1})", "ERROR: invalid JSON at byte 5"},
      {R"({"a":1 "b":2})", "ERROR: invalid JSON at byte 7"},
      {"{'a':1}", "ERROR: invalid JSON at byte 1"},
      {"{1:2}", "ERROR: invalid JSON at byte 1"},
      {R"({"a":})", "ERROR: invalid JSON at byte 5"},
      {"[}", "ERROR: invalid JSON at byte 1"},
      {"{]", "ERROR: invalid JSON at byte 1"},
      {"tru", "ERROR: invalid JSON at byte "},
      {"True", "ERROR: invalid JSON at byte 0"},
      {"nul", "ERROR: invalid JSON at byte "},
      {"[,1]", "ERROR: invalid JSON at byte 1"},
  };
  ExpectCanon(cases, kStrict);
}

TEST(ParseJsonTest, ScalarsAtTheTop) {
  ExpectCanon({{"null", "null"},
               {" true ", "true"},
               {"false", "false"},
               {"\"x\"", "\"x\""},
               {"-0", "0"},
               {"12", "12"},
               {"[]", "[]"},
               {"[[],{}]", "[[],{}]"}},
              kStrict);
}

TEST(ParseJsonTest, DepthLimit) {
  ParseOptions three;
  three.max_depth = 3;
  ExpectCanon({{"[[[1]]]", "[[[1]]]"},
               {R"({"a":{"b":[]}})", R"({"a":{"b":[]}})"},
               {"[[[[1]]]]",
                "ERROR: invalid JSON at byte 3: nesting deeper than 3 levels"},
               {R"({"a":{"b":[{}]}})", "ERROR: nesting deeper than 3 levels"},
               {R"([[["\ud800"]]])", "ERROR: surrogate"}},
              kStrict, three);

  // The default (100): 100 levels parse, 101 do not.
  std::string ok = std::string(100, '[') + std::string(100, ']');
  EXPECT_EQ(Canon(ok), ok);
  EXPECT_EQ(Canon(std::string(101, '[') + std::string(101, ']')),
            "ERROR: invalid JSON at byte 100: nesting deeper than 100 levels");
}

TEST(ParseJsonTest, VeryDeepInputFailsCleanly) {
  // Far deeper than any stack would survive if parsing or destruction recursed.
  const size_t n = 100000;
  EXPECT_EQ(Canon(std::string(n, '[')),
            "ERROR: invalid JSON at byte 100: nesting deeper than 100 levels");
  EXPECT_EQ(Canon(std::string(n, '[') + std::string(n, ']')),
            "ERROR: invalid JSON at byte 100: nesting deeper than 100 levels");
  std::string objects;
  for (size_t i = 0; i < n; ++i) objects += "{\"a\":";
  EXPECT_EQ(Canon(objects),
            "ERROR: invalid JSON at byte 500: nesting deeper than 100 levels");
}

TEST(ParseJsonTest, SizeLimit) {
  ParseOptions ten;
  ten.max_bytes = 10;
  ExpectCanon(
      {{"[1,2,3,45]", "[1,2,3,45]"},
       {"[1,2,3,4,5]", "ERROR: JSON is 11 bytes; the limit is 10"},
       {"[" + std::string(1000000, ' ') + "]", "ERROR: JSON is 1000002 bytes"}},
      kStrict, ten);
  EXPECT_EQ(Canon("\"" + std::string(9 << 20, 'a') + "\""),
            "ERROR: JSON is 9437186 bytes; the limit is 8388608");
}

// ------------------------------------------------------------ Value

TEST(ValueTest, NumberFromLexeme) {
  struct Lexeme {
    const char* in;
    NumberKind kind;
    int64_t i;
  };
  const Lexeme valid[] = {
      {"0", NumberKind::kInteger, 0},
      {"-0", NumberKind::kInteger, 0},
      {"9223372036854775807", NumberKind::kInteger, INT64_MAX},
      {"-9223372036854775808", NumberKind::kInteger, INT64_MIN},
      {"9223372036854775808", NumberKind::kBigInteger, 0},
      {"-9223372036854775809", NumberKind::kBigInteger, 0},
      {"1.0", NumberKind::kNonInteger, 0},
      {"1e5", NumberKind::kNonInteger, 0},
      {"-0.5E-3", NumberKind::kNonInteger, 0},
  };
  for (const Lexeme& l : valid) {
    absl::StatusOr<Value> v = Value::NumberFromLexeme(l.in);
    ASSERT_TRUE(v.ok()) << l.in << ": " << v.status();
    EXPECT_TRUE(v->is_number());
    EXPECT_EQ(v->number_kind(), l.kind) << l.in;
    if (l.kind == NumberKind::kInteger) {
      EXPECT_EQ(v->int_value(), l.i);
    } else {
      EXPECT_EQ(v->string_value(), l.in);
    }
    // Parsing the lexeme gives the same value.
    EXPECT_EQ(*ParseJson(l.in), *v) << l.in;
  }
  for (const char* bad : {"", "-", "01", "-01", "1.", ".1", "+1", "1e", "1e+",
                          "0x1", "1 ", " 1", "NaN", "1.5.3", "١"}) {
    absl::StatusOr<Value> v = Value::NumberFromLexeme(bad);
    EXPECT_FALSE(v.ok()) << bad;
    if (!v.ok()) {
      EXPECT_NE(v.status().message().find("is not a JSON number"),
                std::string::npos);
    }
  }
}

TEST(ValueTest, SafeIntegers) {
  EXPECT_TRUE(Value::Integer(kMaxSafeInteger).is_safe_integer());
  EXPECT_TRUE(Value::Integer(-kMaxSafeInteger).is_safe_integer());
  EXPECT_FALSE(Value::Integer(kMaxSafeInteger + 1).is_safe_integer());
  EXPECT_FALSE(Value::Integer(-kMaxSafeInteger - 1).is_safe_integer());
  EXPECT_FALSE(Value::NumberFromLexeme("1.0")->is_safe_integer());
  EXPECT_FALSE(Value::String("1").is_safe_integer());
  EXPECT_EQ(*CanonicalJson(Value::Integer(-kMaxSafeInteger), kStrict),
            "-9007199254740991");
  EXPECT_FALSE(CanonicalJson(Value::Integer(INT64_MIN), kSpec).ok());
  EXPECT_EQ(*CanonicalJson(Value::Integer(INT64_MIN), kLegacy),
            "-9223372036854775808");
}

TEST(ValueTest, ObjectsStaySorted) {
  Value o = Value::Object();
  o.Set("b", Value::Integer(1));
  o.Set("\xf0\x9f\x98\x80", Value::Integer(2));
  o.Set("a", Value::Bool(true));
  o.Set("\xef\xbd\xa1", Value());
  o.Set("b", Value::String("replaced"));
  EXPECT_EQ(ToJson(o),
            "{\"a\":true,\"b\":\"replaced\",\"\xef\xbd\xa1\":null,"
            "\"\xf0\x9f\x98\x80\":2}");
  ASSERT_NE(o.Find("b"), nullptr);
  EXPECT_EQ(o.Find("b")->string_value(), "replaced");
  EXPECT_EQ(o.Find("c"), nullptr);
  EXPECT_EQ(Value::Array().Find("a"), nullptr);
  EXPECT_TRUE(o.Erase("a"));
  EXPECT_FALSE(o.Erase("a"));
  o.FindMutable("b")->mutable_array();  // not an array: harmless
  o.RetainMembers([](absl::string_view k) { return k != "b"; });
  EXPECT_EQ(ToJson(o), "{\"\xef\xbd\xa1\":null,\"\xf0\x9f\x98\x80\":2}");
  // Parsed and built objects compare equal when they hold the same members.
  EXPECT_EQ(*ParseJson("{\"\xf0\x9f\x98\x80\":2,\"\\uff61\":null}"), o);
  EXPECT_NE(*ParseJson("{\"\xf0\x9f\x98\x80\":2}"), o);
}

TEST(ValueTest, NumbersCompareByLexemeKind) {
  EXPECT_EQ(*ParseJson("[-0]"), *ParseJson("[0]"));
  EXPECT_NE(*ParseJson("[1.0]"), *ParseJson("[1]"));
  EXPECT_NE(*ParseJson("[1e1]"), *ParseJson("[10.0]"));
  EXPECT_EQ(*ParseJson("[1e1]"), *ParseJson("[1e1]"));
}

TEST(CanonicalJsonTest, WithoutSkipsTopLevelMembersOnly) {
  Value v = *ParseJson(
      R"({"signatures":{"x":1},"unsigned":{"age":1},"a":{"signatures":2},"b":1.5})");
  std::string out;
  ASSERT_TRUE(
      AppendCanonicalJsonWithout(v, {"signatures", "unsigned"}, kLegacy, &out)
          .ok());
  EXPECT_EQ(out, R"({"a":{"signatures":2},"b":1.5})");
  // A skipped member is not encoded, so its numbers cannot fail.
  Value w = *ParseJson(R"({"unsigned":{"n":1.5},"a":1})");
  out.clear();
  ASSERT_TRUE(AppendCanonicalJsonWithout(w, {"unsigned"}, kStrict, &out).ok());
  EXPECT_EQ(out, R"({"a":1})");
  out.clear();
  absl::Status s = AppendCanonicalJsonWithout(w, {}, kStrict, &out);
  EXPECT_EQ(s.message(),
            "number at $.unsigned.n: 1.5 has a fraction or exponent, which "
            "canonical JSON forbids");
  out.clear();
  EXPECT_EQ(AppendCanonicalJsonWithout(*ParseJson("[1]"), {}, kStrict, &out)
                .message(),
            "expected a JSON object");
  // Appends to what is there.
  out = "prefix:";
  ASSERT_TRUE(AppendCanonicalJson(*ParseJson("[1]"), kStrict, &out).ok());
  EXPECT_EQ(out, "prefix:[1]");
}

}  // namespace
}  // namespace keyverifier::core

namespace keyverifier::core {
namespace {

TEST(JsonViewTest, ReadsMembersInCanonicalOrder) {
  JsonView view;
  ASSERT_TRUE(view.Parse(R"({"b":[1,"x",{"d":null,"c":true}],"a":"s","\u00e9":-7})"));
  JsonView::Ref root = view.root();
  ASSERT_TRUE(view.is_object(root));
  ASSERT_EQ(view.size(root), 3u);
  EXPECT_EQ(view.key(root, 0), "a");
  EXPECT_EQ(view.key(root, 1), "b");
  EXPECT_EQ(view.key(root, 2), "\xc3\xa9");
  EXPECT_EQ(view.string_value(view.Find(root, "a")), "s");
  EXPECT_EQ(view.int_value(view.Find(root, "\xc3\xa9")), -7);
  JsonView::Ref b = view.Find(root, "b");
  EXPECT_EQ(view.type(b), Value::Type::kArray);
  ASSERT_EQ(view.size(b), 3u);
  EXPECT_TRUE(view.is_integer(view.child(b, 0)));
  EXPECT_FALSE(view.child(b, 3));  // past the end: absent
  EXPECT_FALSE(view.Find(root, "missing"));
  EXPECT_FALSE(view.Find(b, "a"));  // not an object
  EXPECT_EQ(view.type(JsonView::Ref()), Value::Type::kNull);
  std::string out;
  ASSERT_TRUE(view.AppendCanonicalJsonWithout(root, {"a"}, NumberPolicy::kStrict, &out).ok());
  EXPECT_EQ(out, "{\"b\":[1,\"x\",{\"c\":true,\"d\":null}],\"\xc3\xa9\":-7}");
  EXPECT_EQ(view.ToValue(root), *ParseJson(R"({"a":"s","b":[1,"x",{"c":true,"d":null}],"é":-7})"));
}

TEST(JsonViewTest, LeavesTheRareAndTheInvalidToParseJson) {
  JsonView view;
  for (const char* text :
       {"1.5", "1e2", "18446744073709551615", "123456789012345678901234567890",
        R"({"a":1,"a":2})", R"({"a":1,"\u0061":2})", R"(["\ud800"])", "[1,",
        "\"\xc3\"", "", "[1] [2]", "\"raw \x01\"", "{\"k\x1f\":1}"}) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(view.Parse(text));
    EXPECT_FALSE(view.root());
  }
  ParseOptions shallow;
  shallow.max_depth = 2;
  EXPECT_TRUE(view.Parse("[[1]]", shallow));
  EXPECT_FALSE(view.Parse("[[[1]]]", shallow));
  ParseOptions small;
  small.max_bytes = 4;
  EXPECT_FALSE(view.Parse("[1,2]", small));
}

TEST(JsonViewTest, EncodesAsTheValuesItParsesTo) {
  JsonView view;
  ASSERT_TRUE(view.Parse(R"({"n":9007199254740992,"s":"a\u0001\"b"})"));
  std::string strict, legacy;
  absl::Status s = view.AppendCanonicalJson(view.root(), NumberPolicy::kStrict, &strict);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("at $.n"), std::string::npos) << s;
  ASSERT_TRUE(view.AppendCanonicalJson(view.root(), NumberPolicy::kLegacy, &legacy).ok());
  EXPECT_EQ(legacy, R"({"n":9007199254740992,"s":"a\u0001\"b"})");
  EXPECT_EQ(legacy, ToJson(view.ToValue(view.root())));
  EXPECT_FALSE(view.AppendCanonicalJsonWithout(view.Find(view.root(), "s"), {},
                                               NumberPolicy::kLegacy, &legacy)
                   .ok());
}

}  // namespace
}  // namespace keyverifier::core
