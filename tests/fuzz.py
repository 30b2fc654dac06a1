"""Generated hostile payloads for the decoders and the pipeline (issue 16).

:func:`payloads` yields a deterministic stream (one seed, one stream) of record values
of the kinds that break JSON consumers: random bytes, deep nesting, huge numbers,
unicode and surrogate ids, duplicate keys, NaN/Infinity spellings, wrong types and
mutations (truncated, flipped, spliced) of valid events. Most are invalid input
events; some are valid, on purpose (a duplicate key, a mutation that stays valid).
Stdlib ``random`` only, so the unit test can generate 100,000 of them in a second or
two; the property-based tests add hypothesis' own strategies on top.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

VALID = (b'{"id":"v%d","features":[1.5,2,3],"deadline_ms":50,"ts":1700000000000,'
         b'"reply_to":"r"}')

_NUMBERS = (b"NaN", b"-NaN", b"nan", b"Infinity", b"-Infinity", b"inf", b"-inf", b"1e999999",
            b"-1e400", b"1e309", b"1" * 400, b"-" + b"9" * 5000, b"0x10", b"1.", b".5", b"01",
            b"1e", b"+1", b"--1", b"1_000", b'"NaN"', b'"Infinity"', b"null", b"true",
            b"4.9e-325", b"1.7976931348623157e309", b"-0", b"1E+2")
_STRINGS = (b'"\\ud800"', b'"a\\udfff"', b'"\\u0000"', b'""', b'"\xff\xfe"', b'"\xc3"',
            b'"\\x41"', b'"\\u12"', '"\u202eevil"'.encode(), '"\U0001f600"'.encode(),
            b'"\t"', b'"unterminated', b"'single'", b'"a\nb"')
_WRONG = (b"[]", b"{}", b"null", b"true", b"1", b'"x"', b'[["a"]]', b'{"a":1}', b"[1,[2]]",
          b'[1,"2",3]', b'{"x":"1"}', b"-1", b"0")


def _random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randrange(0, 200))


def _deep(rng: random.Random) -> bytes:
    depth = rng.choice((10, 100, 1000, 1200, 5000, rng.randrange(1, 6000)))
    opener, closer = rng.choice(((b"[", b"]"), (b'{"a":', b"}"), (b'{"id":', b"}")))
    inner = opener * depth + b"1" + closer * rng.choice((depth, depth - 1, 0))
    if rng.random() < 0.5:
        return b'{"id":"deep","features":' + inner + b"}"
    return inner


def _number(rng: random.Random) -> bytes:
    n = rng.choice(_NUMBERS)
    where = rng.randrange(3)
    if where == 0:
        return b'{"id":"n","features":[1,%s,3]}' % n
    if where == 1:
        return b'{"id":"n","features":[1,2,3],"deadline_ms":%s}' % n
    return b'{"id":"n","features":{"a":%s}}' % n


def _unicode_id(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        rid = rng.choice(_STRINGS)
    else:
        text = "".join(chr(rng.choice((rng.randrange(0x20, 0x7f), rng.randrange(0x80, 0xd800),
                                       rng.randrange(0xe000, 0x110000))))
                       for _ in range(rng.randrange(1, 40)))
        rid = b'"' + text.replace("\\", "").replace('"', "").encode("utf-8", "replace") + b'"'
    features = rng.choice((b"[1,2,3]", b'"no"', b"null", b"[]", b'{"a":"b"}'))
    return b'{"id":%s,"features":%s}' % (rid, features)


def _duplicate_keys(rng: random.Random) -> bytes:
    key = rng.choice((b"id", b"features", b"deadline_ms", b"ts", b"reply_to"))
    first = b'"x"' if key in (b"id", b"reply_to") else b"1"
    return b'{"id":"dup","features":[1,2],"%s":%s,"%s":%s}' % (key, first, key,
                                                               rng.choice(_WRONG))


def _wrong_types(rng: random.Random) -> bytes:
    field = rng.choice((b"id", b"features", b"deadline_ms", b"ts", b"reply_to", b"v"))
    value = rng.choice(_WRONG + _NUMBERS[:6] + _STRINGS[:4])
    base = {b"id": b'"w"', b"features": b"[1,2,3]"}
    base[field] = value
    if rng.random() < 0.3:
        base.pop(rng.choice((b"id", b"features")), None)
    return b"{" + b",".join(b'"%s":%s' % kv for kv in base.items()) + b"}"


def _mutated(rng: random.Random) -> bytes:
    data = bytearray(VALID % rng.randrange(10**6))
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(4)
        at = rng.randrange(len(data))
        if kind == 0:
            data[at] = rng.randrange(256)
        elif kind == 1:
            del data[at:]
        elif kind == 2:
            data[at:at] = rng.choice(_NUMBERS + _STRINGS + _WRONG)
        else:
            del data[at:at + rng.randrange(1, 8)]
        if not data:
            break
    return bytes(data)


GENERATORS: tuple[Callable[[random.Random], bytes], ...] = (
    _random_bytes, _deep, _number, _unicode_id, _duplicate_keys, _wrong_types, _mutated)


def payloads(n: int, seed: int = 16) -> Iterator[bytes]:
    """``n`` generated record values, the same ones for the same ``seed``."""
    rng = random.Random(seed)
    for i in range(n):
        yield GENERATORS[i % len(GENERATORS)](rng)
