"""Issue 18: no record's bytes can make a decoder raise anything but its invalid path.

Each payload here once killed (or could kill) a component on every restart.
"""

from __future__ import annotations

import pytest

from rendezvous.messages import (
    MAX_ID_LENGTH,
    MAX_INPUT_BYTES,
    InputEvent,
    Invalid,
    Undecodable,
    decode_decision,
    decode_feedback,
    decode_input,
    decode_policy,
    decode_score,
    decode_scored,
)
from rendezvous.worker.batch import prepare
from tests.unit.worker.test_worker_batch import NAMES, NOW, Record

POISON = {
    "1200 brackets": b"[" * 1200 + b"\n",
    "5000-deep objects": b'{"a":' * 5000 + b"1" + b"}" * 5000,
    "deep features": b'{"id":"d","features":' + b"[" * 5000 + b"]" * 5000 + b"}",
    "2 MB string": b'{"id":"big","features":[1,2,3],"pad":"' + b"x" * (2 << 20) + b'"}',
    "invalid UTF-8 id": b'{"id":"\xff\xfe","features":[1,2,3]}',
    "lone surrogate id": b'{"id":"a\\ud800","features":[1,2,3]}',
    "100k-character id": b'{"id":"' + b"i" * 100_000 + b'","features":[1,2,3]}',
    "huge number": b'{"id":"n","features":[1e999999,2,3]}',
    "NaN": b'{"id":"n","features":[NaN,2,3]}',
    "not an object": b"42",
    "null": b"null",
}


@pytest.mark.parametrize("payload", POISON.values(), ids=list(POISON))
def test_input_decoder_turns_poison_into_invalid(payload: bytes) -> None:
    result = decode_input(payload)
    assert isinstance(result, Invalid), result
    assert result.id is None or len(result.id) <= MAX_ID_LENGTH


@pytest.mark.parametrize("payload", POISON.values(), ids=list(POISON))
@pytest.mark.parametrize("decoder", [decode_score, decode_scored, decode_decision,
                                     decode_policy, decode_feedback])
def test_other_decoders_raise_only_undecodable(decoder, payload: bytes) -> None:
    try:
        decoder(payload)
    except Undecodable as exc:
        assert isinstance(exc, ValueError) and str(exc)
    # A payload some decoders accept (e.g. ``{}`` defaults for policy) is fine: no crash.


@pytest.mark.parametrize("payload", POISON.values(), ids=list(POISON))
def test_reasons_stay_short(payload: bytes) -> None:
    result = decode_input(payload)
    assert isinstance(result, Invalid) and 0 < len(result.reason) <= 400


def test_oversized_input_is_rejected_before_parsing() -> None:
    result = decode_input(POISON["2 MB string"])
    assert isinstance(result, Invalid) and f"more than {MAX_INPUT_BYTES}" in result.reason


def test_an_id_at_the_limit_is_accepted() -> None:
    ok = decode_input(b'{"id":"' + b"i" * MAX_ID_LENGTH + b'","features":[1,2,3]}')
    assert isinstance(ok, InputEvent)


def test_worker_batch_with_poison_between_valid_records_keeps_the_valid_ones() -> None:
    records = [Record(b'{"id":"ok1","features":[1,2,3]}')]
    records += [Record(p) for p in POISON.values()]
    records.append(Record(b'{"id":"ok2","features":[4,5,6]}'))
    batch = prepare(records, NAMES, NOW, default_deadline_ms=50.0)
    assert batch.ids == ["ok1", "ok2"]
    assert len(batch.invalid) == len(POISON)


def test_worker_batch_survives_a_record_that_breaks_the_decode_pass() -> None:
    class Broken(Record):
        def timestamp(self) -> tuple[int, int]:
            raise RuntimeError("a bug on this record only")

    records = [Broken(b'{"id":"bad","features":[1,2,3]}'),
               Record(b'{"id":"ok","features":[1,2,3]}')]
    batch = prepare(records, NAMES, NOW, default_deadline_ms=50.0)
    assert batch.ids == ["ok"]
    assert "internal error" in batch.invalid[0].reason
