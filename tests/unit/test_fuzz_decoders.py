"""Issue 16: >= 100,000 generated payloads at the input and score decoders.

``decode_input`` never raises (bad bytes end as :class:`Invalid`); every other
decoder raises :class:`Undecodable` and nothing else. A seeded corpus loop
(:mod:`tests.fuzz`, 100,000 payloads) plus derandomized hypothesis
strategies, so the run is fast and the same every time.
"""

from __future__ import annotations

import math
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rendezvous.messages import (
    MAX_ID_LENGTH,
    MAX_SCORE_BYTES,
    InputEvent,
    Invalid,
    Score,
    Undecodable,
    decode_input,
    decode_score,
)
from tests.fuzz import GENERATORS, payloads

CORPUS = 100_000
FUZZ = settings(derandomize=True, max_examples=1500, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
# Building nested documents is hypothesis' slow part (~10 ms each): fewer of them.
FUZZ_JSON = settings(FUZZ, max_examples=300)


def _check_input(data: bytes) -> InputEvent | Invalid:
    result = decode_input(data)
    assert isinstance(result, InputEvent | Invalid), result
    if isinstance(result, Invalid):
        assert 0 < len(result.reason) <= 400
        assert result.id is None or 0 < len(result.id) <= MAX_ID_LENGTH
    else:
        assert 0 < len(result.id) <= MAX_ID_LENGTH
        values = (result.features if isinstance(result.features, list)
                  else list(result.features.values()))
        # Numbers are finite (JSON has no NaN); strings are for string features.
        assert all(isinstance(v, str) or math.isfinite(v) for v in values)
    return result


def _check_score(data: bytes) -> Score | None:
    try:
        return decode_score(data)
    except Undecodable as exc:
        assert str(exc)
        return None


def test_generated_corpus_of_100k_payloads() -> None:
    started = time.perf_counter()
    kinds: dict[str, int] = {}
    for data in payloads(CORPUS):
        result = _check_input(data)
        kind = "valid" if isinstance(result, InputEvent) else "invalid"
        kinds[kind] = kinds.get(kind, 0) + 1
        _check_score(data)
    assert sum(kinds.values()) == CORPUS
    # Mostly invalid, some valid on purpose; and fast enough to stay a unit test.
    assert kinds["invalid"] > 0.8 * CORPUS and kinds.get("valid", 0) > 0
    assert time.perf_counter() - started < 30


def test_the_corpus_is_deterministic_and_covers_every_generator() -> None:
    assert list(payloads(50, seed=3)) == list(payloads(50, seed=3))
    assert len({len(p) for p in payloads(len(GENERATORS) * 20)}) > 20


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    _check_input(data)
    _check_score(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(10**30), max_value=10**30) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=5),
    max_leaves=12,
)


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ_JSON
@given(st.fixed_dictionaries({}, optional={
    "id": JSON | st.text(max_size=50), "features": JSON, "deadline_ms": JSON,
    "reply_to": JSON, "ts": JSON, "v": JSON, "model": JSON, "status": JSON, "score": JSON,
    "version": JSON}))
def test_events_with_arbitrary_field_values(event: dict[str, Any]) -> None:
    data = _json(event)
    _check_input(data)
    _check_score(data)


@FUZZ_JSON
@given(JSON)
def test_any_json_document(value: Any) -> None:
    data = _json(value)
    _check_input(data)
    _check_score(data)


SPELLINGS = st.sampled_from(["NaN", "-NaN", "Infinity", "-Infinity", "inf", "nan", "1e999",
                             "-1e999", "1" * 400, "9" * 5000 + ".5", "1e-400", "0.0e0"])


@FUZZ
@given(SPELLINGS, st.integers(0, 2), st.text(max_size=40))
def test_nan_infinity_and_huge_number_spellings(number: str, where: int, rid: str) -> None:
    n = number.encode()
    fields = [b'"features":[1,%s]' % n, b'"deadline_ms":%s' % n, b'"features":{"a":%s}' % n]
    data = b'{"id":%s,%s}' % (_json(rid), fields[where])
    _check_input(data)
    _check_score(data)


@FUZZ
@given(st.integers(1, 6000), st.sampled_from(["[", '{"a":', '{"id":']), st.booleans())
def test_deep_nesting(depth: int, opener: str, closed: bool) -> None:
    closer = "]" if opener == "[" else "}"
    data = (opener * depth + "1" + (closer * depth if closed else "")).encode()
    _check_input(data)
    _check_score(data)
    wrapped = b'{"id":"d","features":' + data + b"}"
    if depth > 1 or not closed:  # ``[1]`` and ``{"a":1}`` are valid features
        assert isinstance(_check_input(wrapped), Invalid)


@FUZZ
@given(st.text(min_size=1, max_size=60), st.text(max_size=60))
def test_duplicate_keys_take_one_value_and_never_crash(first: str, second: str) -> None:
    data = b'{"id":%s,"features":[1,2],"id":%s}' % (_json(first), _json(second))
    result = _check_input(data)
    if isinstance(result, InputEvent):
        assert result.id in (first, second)


def test_score_size_and_id_length_are_bounded() -> None:
    ok = b'{"id":"%s","model":"m","version":"1","status":"ok","score":0.5}'
    assert decode_score(ok % (b"i" * MAX_ID_LENGTH)).id == "i" * MAX_ID_LENGTH
    for bad, reason in ((ok % (b"i" * (MAX_ID_LENGTH + 1)), "more than 1024"),
                        (ok % b"x" + b" " * MAX_SCORE_BYTES, f"more than {MAX_SCORE_BYTES}")):
        try:
            decode_score(bad)
        except Undecodable as exc:
            assert reason in str(exc)
        else:
            raise AssertionError("accepted")
