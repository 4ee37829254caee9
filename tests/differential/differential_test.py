"""Differential test of the C++ signing core against Debian's Python reference.

The reference is what signed the Matrix events and key responses that exist:
python3-canonicaljson (1.6.2), python3-signedjson and python3-nacl. This script
generates random JSON documents from a fixed seed, asks the C++ driver
(json_driver.cc) about all of them in one batch, and fails on any difference:

  * canonical JSON, byte for byte, under every NumberPolicy:
      legacy  Python's json.loads followed by encode_canonical_json, exactly
              (integers of any size, floats as repr, inf rejected);
      strict  the same bytes, but only for documents whose numbers are plain
              integers in [-(2^53-1), 2^53-1]; anything else must be rejected;
      spec    numbers whose value is an integer in range are written as that
              integer (the appendix turns 1e10 into 10000000000); documents
              with any other number must be rejected. Python's encoder has no
              such mode, so the expected bytes are encode_canonical_json of the
              document with each number replaced by its exact integer value;
  * documents that are not JSON (truncated, invalid UTF-8, lone surrogate
    escapes, NaN, trailing data, ...) are rejected by both;
  * signatures: C++ verifies what signedjson signed, signedjson verifies what
    C++ signed, ed25519 being deterministic the two signatures are identical,
    and both reject the same documents after tampering.

Usage: differential_test.py --driver PATH [--count N] [--seed S]
"""

import argparse
import base64
import copy
import decimal
import importlib.metadata
import json
import random
import struct
import subprocess
import sys

import canonicaljson
import signedjson.key
import signedjson.sign

SERVER = "domain"
MAX_SAFE = 2**53 - 1
# Matrix spec appendices, "Cryptographic Test Vectors": the signing key seed
# (its last character carries non-zero spare bits) and the signatures of {}
# and {"one": 1, "two": "Two"} made with it as "domain", "ed25519:1".
SPEC_SEED_B64 = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
SPEC_VECTORS = [
    ({}, "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"),
    ({"one": 1, "two": "Two"},
     "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"),
]

B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64encode(data):
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode_tolerant(text):
    """Unpadded (or padded) base64 that ignores non-zero spare bits, as the spec
    seed needs; Python's base64 module would need padding fixed up first."""
    acc = bits = 0
    out = bytearray()
    for ch in text.rstrip("="):
        acc = (acc << 6) | B64_ALPHABET.index(ch)
        bits += 6
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
            acc &= (1 << bits) - 1
    if bits >= 6:
        raise ValueError("base64 with a dangling character: %r" % text)
    return bytes(out)


# ------------------------------------------------------------------ documents


class Num:
    """A JSON number as written in the document (its lexeme)."""

    __slots__ = ("lexeme",)

    def __init__(self, lexeme):
        self.lexeme = lexeme

    def __repr__(self):
        return "Num(%s)" % self.lexeme


class Rejected(Exception):
    """The expected verdict is a rejection."""


# Keys that collide in interesting ways: code point order differs from UTF-16
# order once non-BMP characters meet U+E000..U+FFFF; escapes and signing members.
KEY_POOL = [
    "", "a", "b", "A", "aa", "a\x00", "\x00", "\x7f", "\x1f", "é", "e\u0301",
    "\ue000", "\uff61", "\uffff", "\U00010000", "\U0001f600", "\U0010ffff",
    "\u2028", "\"", "\\", "/", "日", "本", "signatures", "unsigned",
]
SHORT_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def random_char(rng):
    r = rng.random()
    if r < 0.45:
        return chr(rng.randint(0x20, 0x7E))
    if r < 0.55:
        return chr(rng.randint(0x00, 0x1F))
    if r < 0.60:
        return rng.choice(['"', "\\", "/", "\x7f", "\u2028", "\u2029", "\ufeff"])
    if r < 0.70:
        return chr(rng.randint(0x80, 0x7FF))
    if r < 0.85:
        cp = rng.randint(0x800, 0xFFFF - 0x800)
        return chr(cp if cp < 0xD800 else cp + 0x800)  # no surrogates
    return chr(rng.randint(0x10000, 0x10FFFF))


def random_string(rng, max_len=12):
    return "".join(random_char(rng) for _ in range(rng.randint(0, max_len)))


def random_key(rng):
    if rng.random() < 0.5:
        return rng.choice(KEY_POOL)
    return random_string(rng, 6)


def spell_integer(rng, value):
    """An integer value as one of the lexemes that the spec policy reads as it."""
    choice = rng.randint(0, 7)
    if choice <= 2:
        return str(value)
    if choice == 3:
        return "%d.%s" % (value, "0" * rng.randint(1, 3))
    if choice == 4:  # exponent with trailing zeros moved into it
        digits = str(abs(value))
        zeros = len(digits) - len(digits.rstrip("0")) if value else 0
        k = rng.randint(0, zeros)
        mantissa = digits[: len(digits) - k] if value else "0"
        return "%s%s%s%s" % ("-" if value < 0 else "", mantissa,
                             rng.choice(["e", "E"]),
                             rng.choice(["", "+"]) + str(k))
    if choice == 5:  # scientific: d.ddd followed by the exponent that undoes it
        digits = str(abs(value))
        return "%s%s.%se%d" % ("-" if value < 0 else "", digits[0],
                               digits[1:] or "0", len(digits) - 1)
    if choice == 6:  # one more digit, taken back by a negative exponent
        if value == 0:
            return rng.choice(["-0", "0e5", "0.0", "-0.0E-3"])
        return "%d0e-1" % value
    return str(value)


def random_safe_integer(rng):
    r = rng.random()
    if r < 0.5:
        return rng.randint(-1000, 1000)
    if r < 0.8:
        return rng.randint(-MAX_SAFE, MAX_SAFE)
    if r < 0.9:
        return rng.choice([MAX_SAFE, -MAX_SAFE, 0, 10**15, 2**31, -(2**31) - 1])
    return rng.randint(1, 999) * 10 ** rng.randint(0, 12)


def random_float_lexeme(rng):
    r = rng.random()
    if r < 0.3:  # repr of an arbitrary double (any exponent, subnormals)
        while True:
            d = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
            if d == d and d not in (float("inf"), float("-inf")):
                return repr(d)
    if r < 0.5:
        return repr(rng.uniform(-1e6, 1e6))
    if r < 0.8:  # hand-made lexemes, some overflowing or underflowing
        mantissa = str(rng.randint(0, 10 ** rng.randint(1, 22)))
        lexeme = ("-" if rng.random() < 0.3 else "") + mantissa
        if rng.random() < 0.6:
            lexeme += "." + "".join(rng.choice("0123456789")
                                    for _ in range(rng.randint(1, 25)))
        if rng.random() < 0.7:
            lexeme += rng.choice("eE") + rng.choice(["", "+", "-"]) + \
                str(rng.randint(0, 330))
        return lexeme
    return rng.choice([
        "-0.0", "0.0", "1e10", "1.5e-7", "1e16", "1e15", "0.1", "1e-5", "1e-4",
        "5e-324", "2.5e-324", "1e-400", "-1e-400", "1.7976931348623157e308",
        "1.7976931348623159e308", "1e309", "-1e309", "0e400", "-0.0e999",
        "9007199254740993.0", "123456789012345678901234567890.5", "100.0",
        "1E2", "2.2250738585072014e-308", "4.9406564584124654e-324",
    ])


def random_number(rng, mode):
    if mode == "strict":
        if rng.random() < 0.01:  # makes the document invalid for strict
            return Num(rng.choice(["1.0", "9007199254740992", "1e2", "-9007199254740992"]))
        return Num(str(random_safe_integer(rng)))
    if mode == "spec":
        if rng.random() < 0.01:  # makes the document invalid for spec
            return Num(rng.choice(["1.5", "9007199254740992", "1e16", "0.1e1", "-1e-1"]))
        return Num(spell_integer(rng, random_safe_integer(rng)))
    # legacy: anything
    r = rng.random()
    if r < 0.4:
        return Num(str(random_safe_integer(rng)))
    if r < 0.55:  # beyond 2^53, beyond int64, beyond a double's range
        digits = rng.choice([17, 19, 20, 25, 40, 308, 309, 320, 400])
        value = rng.randint(10 ** (digits - 1), 10**digits - 1)
        return Num(str(-value if rng.random() < 0.5 else value))
    return Num(random_float_lexeme(rng))


def random_value(rng, mode, depth):
    r = rng.random()
    if depth > 0 and r < 0.25:
        obj = {}
        for _ in range(rng.randint(0, 6)):
            obj[random_key(rng)] = random_value(rng, mode, depth - 1)
        return obj
    if depth > 0 and r < 0.4:
        return [random_value(rng, mode, depth - 1) for _ in range(rng.randint(0, 6))]
    if r < 0.6:
        return random_string(rng)
    if r < 0.85:
        return random_number(rng, mode)
    return rng.choice([None, True, False])


def random_document(rng, mode):
    doc = {}
    for _ in range(rng.randint(0, 8)):
        key = random_key(rng)
        if key != "signatures":  # the signing tests add their own
            doc[key] = random_value(rng, mode, rng.randint(0, 5))
    return doc


# Text with random insignificant whitespace, member order and escapes, so the
# parser sees many spellings of the same value.
def write_ws(rng, out):
    if rng.random() < 0.3:
        out.append(rng.choice([" ", "\n", "\t", "\r\n", "  ", " \t "]))


def write_u_escape(rng, cp, out):
    text = "%04x" % cp
    if rng.random() < 0.5:
        text = "".join(c.upper() if rng.random() < 0.5 else c for c in text)
    out.append("\\u" + text)


def write_string(rng, s, out, escape_prob):
    out.append('"')
    for ch in s:
        cp = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif cp < 0x20:
            if ch in SHORT_ESCAPES and rng.random() < 0.7:
                out.append(SHORT_ESCAPES[ch])
            else:
                write_u_escape(rng, cp, out)
        elif ch == "/" and rng.random() < 0.3:
            out.append("\\/")
        elif rng.random() < escape_prob:
            if cp >= 0x10000:
                cp -= 0x10000
                write_u_escape(rng, 0xD800 + (cp >> 10), out)
                write_u_escape(rng, 0xDC00 + (cp & 0x3FF), out)
            else:
                write_u_escape(rng, cp, out)
        else:
            out.append(ch)
    out.append('"')


def write_value(rng, v, out, escape_prob):
    write_ws(rng, out)
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, Num):
        out.append(v.lexeme)
    elif isinstance(v, str):
        write_string(rng, v, out, escape_prob)
    elif isinstance(v, list):
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            write_value(rng, item, out, escape_prob)
        if not v:
            write_ws(rng, out)
        out.append("]")
    else:
        items = list(v.items())
        rng.shuffle(items)
        out.append("{")
        for i, (key, item) in enumerate(items):
            if i:
                out.append(",")
            write_ws(rng, out)
            write_string(rng, key, out, escape_prob)
            write_ws(rng, out)
            out.append(":")
            write_value(rng, item, out, escape_prob)
        write_ws(rng, out)
        out.append("}")
    write_ws(rng, out)


def to_text(rng, doc):
    out = []
    write_value(rng, doc, out, rng.choice([0.0, 0.1, 0.5]))
    return "".join(out).encode("utf-8")


# ------------------------------------------------------------ the reference


def reject_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Rejected("duplicate key")
    return dict(pairs)


def reject_constant(name):
    raise Rejected("non-JSON constant " + name)


def python_load(data):
    """Python's reading of a document: strict UTF-8, then json.loads. Duplicate
    keys are refused (json.loads would keep the last one; the core refuses
    them, and no generated document has any)."""
    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=reject_duplicates,
                          parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Rejected(str(e)) from e


def python_canonical(value):
    try:
        return canonicaljson.encode_canonical_json(value)
    except (ValueError, TypeError, UnicodeEncodeError) as e:
        raise Rejected(str(e)) from e


def python_legacy(data):
    return python_canonical(python_load(data))


def exact_integers(v, strict):
    """The document with each Num replaced by the integer it denotes; raises
    Rejected if a number is not an integer in the safe range (strict: or is
    not written as a plain integer)."""
    if isinstance(v, Num):
        lexeme = v.lexeme
        if strict and any(c in lexeme for c in ".eE"):
            raise Rejected("fraction or exponent: " + lexeme)
        d = decimal.Decimal(lexeme)
        if d != d.to_integral_value() or abs(d) > MAX_SAFE:
            raise Rejected("not a safe integer: " + lexeme)
        return int(d)
    if isinstance(v, list):
        return [exact_integers(x, strict) for x in v]
    if isinstance(v, dict):
        return {k: exact_integers(x, strict) for k, x in v.items()}
    return v


def expected(fn, *args):
    """(True, bytes) or (False, why)."""
    try:
        return True, fn(*args)
    except Rejected as e:
        return False, str(e)


# ------------------------------------------------------------- the C++ side


class Driver:
    """Collects requests, runs the driver once, hands out the answers."""

    def __init__(self, path):
        self.path = path
        self.requests = []

    def add(self, **request):
        self.requests.append(request)
        return len(self.requests) - 1

    def run(self):
        lines = "".join(json.dumps(r) + "\n" for r in self.requests)
        proc = subprocess.run([self.path], input=lines.encode("ascii"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=600, check=False)
        if proc.returncode != 0:
            sys.exit("FAIL: driver exited with %d: %s" %
                     (proc.returncode, proc.stderr.decode("utf-8", "replace")))
        # Split on "\n" only: str.splitlines() would also split at U+2028 and
        # other characters that canonical JSON leaves unescaped.
        answers = [json.loads(line.decode("utf-8", "replace"))
                   for line in proc.stdout.split(b"\n") if line]
        if len(answers) != len(self.requests):
            sys.exit("FAIL: %d requests but %d answers" %
                     (len(self.requests), len(answers)))
        for request, answer in zip(self.requests, answers):
            if "request_error" in answer:
                sys.exit("FAIL: driver could not read %r: %s" %
                         (request, answer["request_error"]))
        return answers


def canonical_request(driver, policy, data):
    return driver.add(op="canonical", policy=policy, json_b64=b64encode(data))


# ------------------------------------------------------------------- checks


class Report:
    def __init__(self):
        self.failures = []
        self.counts = {}

    def count(self, name, n=1):
        self.counts[name] = self.counts.get(name, 0) + n

    def fail(self, what, **details):
        self.failures.append((what, details))

    def compare_canonical(self, label, data, want, answer):
        want_ok, want_value = want
        if want_ok and answer["ok"]:
            got = b64decode_tolerant(answer["out_b64"])
            if got == want_value:
                self.count(label + " accepted")
            else:
                self.fail(label + ": canonical JSON differs", document=data,
                          python=want_value, cpp=got)
        elif not want_ok and not answer["ok"]:
            if not answer.get("error"):
                self.fail(label + ": rejected without a message", document=data)
            else:
                self.count(label + " rejected")
        elif want_ok:
            self.fail(label + ": C++ rejects what Python accepts", document=data,
                      python=want_value, cpp_error=answer.get("error"))
        else:
            self.fail(label + ": C++ accepts what Python rejects", document=data,
                      python_error=want_value,
                      cpp=b64decode_tolerant(answer["out_b64"]))


def special_number_documents():
    """Number lexemes at the edges of every policy."""
    lexemes = [
        "0", "-0", "1", "-1", str(MAX_SAFE), str(-MAX_SAFE), str(MAX_SAFE + 1),
        str(-MAX_SAFE - 1), "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-9223372036854775809", "18446744073709551616",
        "1" + "0" * 308, "9" * 309, "-" + "9" * 400, "1e10", "1E10", "1e+10",
        "-0.0", "0.0", "0e0", "0e400", "-0e-400", "0.000e99999", "1.0", "1.5",
        "10e-1", "100e-2", "1.5e1", "0.5e1", "9007199254740991.0",
        "9007199254740991e0", "9007199254740992e0", "90071992547409910e-1",
        "1e15", "1e16", "1e-5", "1e-4", "1.5e-7", "0.1", "1e308", "1e309",
        "1.7976931348623157e308", "1.7976931348623158e308", "5e-324",
        "2e-324", "3e-324", "1e-400", "123456789012345678901234567890e-20",
        "0.30000000000000004", "1.0000000000000002", "4.35", "2.675",
        "0." + "0" * 999 + "1e1005",  # 100000 spelled with 1000 fraction digits
        "0." + "0" * 99999 + "1e100005",  # the same with 100000
    ]
    return lexemes


def invalid_documents(rng, texts):
    docs = [
        b'{"a":"\xc0\xaf"}', b'{"a":"\xe0\x80\xaf"}', b'{"a":"\xed\xa0\x80"}',
        b'{"a":"\xed\xbf\xbf"}', b'{"a":"\xf4\x90\x80\x80"}',
        b'{"a":"\xf8\x88\x80\x80\x80"}', b'{"a":"\x80"}', b'{"a":"\xe2\x82"}',
        b'{"a":"\xe2\x82', b'{"\xff":1}', b'{"a":"\\ud800"}', b'{"a":"\\udc00"}',
        b'{"a":"\\ud800\\u0041"}', b'{"a":"\\udbff\\udbff"}',
        b'{"a":"\\udc00\\ud800"}', b'{"\\ud83d":1}', b'{"a":NaN}',
        b'{"a":Infinity}', b'{"a":-Infinity}', b'{"a":01}', b'{"a":1.}',
        b'{"a":.5}', b'{"a":+1}', b'{"a":1e}', b'{"a":1e+}', b'{"a":-}',
        b'{"a":--1}', b'{"a":0x10}', b'{"a":"\x01"}', b'{"a":"\t"}',
        b'{"a":"\n"}', b'\xef\xbb\xbf{}', b'{} x', b'{}{}', b'{"a":1,}',
        b'[1,]', b'{"a" 1}', b"{'a':1}", b'{"a":tru}', b'{"a":True}',
        b'{"a":nul}', b'\x0c{}', b'{}\x0b', b'{"a":"\\x41"}', b'{"a":"\\u12"}',
        b'{"a":"\\U0041"}', b'{"a":"\\\'"}', b'', b' ', b'{"a":1e400}',
        b'{"a":-1e400}', b'{"a":1' + b'0' * 400 + b'.0}', b'{}\x00',
        b'{"a":"b"}\x00{}', b'\x00{}', b'{"a":"b\x00"}', b'{"a"}', b'{1:2}',
        b'{"a":[}', b'{"a":]', b'{"a":1 2}', b'{"a":"b" "c"}', b'{,}',
        b'{"a":1\xc2\xa0}', b'{"a":\xe3\x80\x80 1}', b'"\\',
        b'{"a":1, "a":2}', b'{"a":1,"\\u0061":2}', b'{"\xc3\xa9":1,"\\u00e9":2}',
        # valid ones among them, to make sure a rejection is not the default
        b' {"a" : [ 1 , 2 ] } ', b'\t\r\n{}\n', b'{"a":"\\u00e9\\/"}',
        b'{"a":"\\ud83d\\ude00"}', b'{"a":"\\uD83D\\uDE00"}',
        b'{"a":"\x7f\xe2\x80\xa8"}',
    ]
    for text in texts:  # truncated documents
        if len(text) > 1:
            docs.append(text[: rng.randint(1, len(text) - 1)])
    for text in texts[:100]:  # a stray invalid byte somewhere
        pos = rng.randint(0, len(text))
        docs.append(text[:pos] + rng.choice([b"\xff", b"\xc0", b"\x80", b"\xed\xa0\x80"]) + text[pos:])
    return docs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", required=True)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    report = Report()
    driver = Driver(args.driver)

    # Keys: the spec's seed, and one drawn from the fixed random generator.
    spec_seed = b64decode_tolerant(SPEC_SEED_B64)
    assert len(spec_seed) == 32, len(spec_seed)
    keys = [
        ("1", spec_seed),
        ("rnd", bytes(rng.getrandbits(8) for _ in range(32))),
    ]
    signing_keys = []
    for version, seed in keys:
        sk = signedjson.key.decode_signing_key_base64("ed25519", version, b64encode(seed))
        signing_keys.append((sk, signedjson.key.get_verify_key(sk), seed))

    # The spec's own vectors, signed by both.
    spec_key, spec_vk, _ = signing_keys[0]
    vector_checks = []
    for obj, want_sig in SPEC_VECTORS:
        signed = signedjson.sign.sign_json(copy.deepcopy(obj), SERVER, spec_key)
        got = signed["signatures"][SERVER]["ed25519:1"]
        if got != want_sig:
            report.fail("Python does not reproduce the spec test vector",
                        object=obj, python=got, spec=want_sig)
        vector_checks.append((want_sig, driver.add(
            op="sign", policy="spec", server=SERVER, key_id="ed25519:1",
            seed_b64=b64encode(spec_seed),
            json_b64=b64encode(json.dumps(obj).encode()))))

    # Random documents, a third generated for each policy's number rules; each
    # is checked under all three policies.
    modes = ["strict", "spec", "legacy"]
    cases = []
    for i in range(args.count):
        mode = modes[i % 3]
        doc = random_document(rng, mode)
        data = to_text(rng, doc)
        want = {
            "legacy": expected(python_legacy, data),
            "strict": expected(lambda: python_canonical(exact_integers(doc, True))),
            "spec": expected(lambda: python_canonical(exact_integers(doc, False))),
        }
        # Self-check of the generator: where strict accepts, the text must mean
        # what the tree says, so Python's own reading must give the same bytes.
        if want["strict"][0] and want["strict"] != want["legacy"]:
            report.fail("generator: text and tree disagree", document=data,
                        tree=doc, legacy=want["legacy"], strict=want["strict"])
        ids = {p: canonical_request(driver, p, data) for p in modes}
        cases.append((mode, doc, data, want, ids))

    specials = []
    for lexeme in special_number_documents():
        data = ('{"n":%s}' % lexeme).encode("ascii")
        doc = {"n": Num(lexeme)}
        want = {
            "legacy": expected(python_legacy, data),
            "strict": expected(lambda d=doc: python_canonical(exact_integers(d, True))),
            "spec": expected(lambda d=doc: python_canonical(exact_integers(d, False))),
        }
        specials.append((data, want, {p: canonical_request(driver, p, data) for p in modes}))

    invalid = []
    for data in invalid_documents(rng, [c[2] for c in cases[:600]]):
        invalid.append((data, expected(python_legacy, data),
                        canonical_request(driver, "legacy", data)))

    # Signatures: Python signs -> C++ verifies (also after tampering and after
    # changing only `unsigned`); C++ signs -> Python verifies.
    sign_cases = []
    for n, (mode, doc, data, want, _) in enumerate(cases):
        if not want[mode][0]:
            continue
        sk, vk, seed = signing_keys[n % len(signing_keys)]
        key_id = "ed25519:" + sk.version
        if mode == "legacy":
            py_obj = python_load(data)
        else:
            py_obj = exact_integers(doc, mode == "strict")
        py_signed = signedjson.sign.sign_json(copy.deepcopy(py_obj), SERVER, sk)
        py_sig = py_signed["signatures"][SERVER][key_id]

        signed_tree = dict(doc)
        signed_tree["signatures"] = {SERVER: {key_id: py_sig}}
        tampered_tree = dict(signed_tree)
        tampered_tree["\U0001f600tampered"] = Num("1")
        unsigned_tree = dict(signed_tree)
        unsigned_tree["unsigned"] = {"age_ts": Num("922834800000"), "x": [doc.get("a")]}
        wrong_key = signing_keys[(n + 1) % len(signing_keys)]

        def verify(tree, key=(sk, vk, seed)):
            return driver.add(op="verify", policy=mode, server=SERVER, key_id=key_id,
                              public_key_b64=b64encode(bytes(key[1])),
                              json_b64=b64encode(to_text(rng, tree)))

        sign_cases.append({
            "mode": mode, "data": data, "vk": vk, "py_sig": py_sig,
            "verify": verify(signed_tree),
            "verify_unsigned": verify(unsigned_tree) if "unsigned" not in doc else None,
            "verify_tampered": verify(tampered_tree),
            "verify_wrong_key": verify(signed_tree, wrong_key),
            "sign": driver.add(op="sign", policy=mode, server=SERVER, key_id=key_id,
                               seed_b64=b64encode(seed), json_b64=b64encode(data)),
        })

    answers = driver.run()

    for want_sig, i in vector_checks:
        if not answers[i]["ok"] or answers[i]["signature"] != want_sig:
            report.fail("C++ does not reproduce the spec test vector",
                        answer=answers[i], spec=want_sig)
        else:
            report.count("spec test vectors signed alike")

    for mode, doc, data, want, ids in cases:
        for policy in modes:
            report.compare_canonical("random/" + policy, data, want[policy],
                                     answers[ids[policy]])
    for data, want, ids in specials:
        for policy in modes:
            report.compare_canonical("numbers/" + policy, data, want[policy],
                                     answers[ids[policy]])
    for data, want, i in invalid:
        report.compare_canonical("malformed/legacy", data, want, answers[i])

    for c in sign_cases:
        label = "signatures/" + c["mode"]
        a = answers[c["verify"]]
        if a.get("valid") is True:
            report.count(label + ": C++ verified Python's signature")
        else:
            report.fail(label + ": C++ rejects Python's signature", document=c["data"], answer=a)
        if c["verify_unsigned"] is not None:
            a = answers[c["verify_unsigned"]]
            if a.get("valid") is True:
                report.count(label + ": C++ ignored a changed unsigned")
            else:
                report.fail(label + ": C++ rejects after a change to unsigned",
                            document=c["data"], answer=a)
        for what in ("verify_tampered", "verify_wrong_key"):
            a = answers[c[what]]
            if a.get("ok") and a.get("valid") is False and a.get("reason") == "bad_signature":
                report.count(label + ": C++ rejected " + what[7:])
            else:
                report.fail(label + ": C++ does not reject " + what[7:],
                            document=c["data"], answer=a)

        a = answers[c["sign"]]
        if not a["ok"]:
            report.fail(label + ": C++ cannot sign", document=c["data"], answer=a)
            continue
        if a["signature"] != c["py_sig"]:
            report.fail(label + ": C++ and Python signatures differ",
                        document=c["data"], python=c["py_sig"], cpp=a["signature"])
        cpp_signed_bytes = b64decode_tolerant(a["signed_b64"])
        try:
            cpp_signed = python_load(cpp_signed_bytes)
        except Rejected as e:
            report.fail(label + ": Python cannot read what C++ signed",
                        signed=cpp_signed_bytes, error=str(e))
            continue
        try:
            signedjson.sign.verify_signed_json(cpp_signed, SERVER, c["vk"])
            report.count(label + ": Python verified C++'s signature")
        except signedjson.sign.SignatureVerifyException as e:
            report.fail(label + ": Python rejects C++'s signature",
                        signed=cpp_signed_bytes, error=str(e))
        cpp_signed["\U0001f600tampered"] = 1
        try:
            signedjson.sign.verify_signed_json(cpp_signed, SERVER, c["vk"])
            report.fail(label + ": Python accepts a tampered object",
                        signed=cpp_signed_bytes)
        except signedjson.sign.SignatureVerifyException:
            report.count(label + ": Python rejected tampered")

    print("reference: Python %s, canonicaljson %s, signedjson %s, PyNaCl %s" % (
        sys.version.split()[0], canonicaljson.__version__,
        importlib.metadata.version("signedjson"),
        importlib.metadata.version("PyNaCl")))
    for name in sorted(report.counts):
        print("%6d  %s" % (report.counts[name], name))
    if report.failures:
        kinds = {}
        for what, details in report.failures:
            kinds.setdefault(what, []).append(details)
        print("\nFAIL: %d disagreements with the Python reference:" %
              len(report.failures))
        for what, examples in sorted(kinds.items()):
            print("\n%6d  %s, e.g." % (len(examples), what))
            for details in examples[:3]:
                for k, v in details.items():
                    text = repr(v)
                    if len(text) > 400:
                        text = text[:400] + "... (%d characters)" % len(text)
                    print("          %s: %s" % (k, text))
                print()
        return 1
    print("\n%d random objects (x3 policies), %d number edge cases, %d malformed "
          "documents and %d signed objects agree with the Python reference"
          % (len(cases), len(specials), len(invalid), len(sign_cases)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
