"""The gateway's OIP codec: what it accepts, what it refuses (400), and the answer it writes."""

from __future__ import annotations

import asyncio
import json
import math
import struct

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rendezvous.gateway.codec import (
    NO_LABEL,
    OUTPUTS,
    choose_deadline,
    decode_request,
    encode,
    parse_deadline_header,
    response,
)
from rendezvous.gateway.errors import BadRequest
from rendezvous.messages import MAX_ID_LENGTH, Scored

NAMES = ["a", "b", "c"]


def body(inputs: list[dict], **extra: object) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


def features(rows: list[list[float]], nested: bool = False, **extra: object) -> dict:
    data = rows if nested else [v for row in rows for v in row]
    return {"name": "features", "datatype": "FP32", "shape": [len(rows), len(rows[0])],
            "data": data, **extra}


def test_features_tensor_flat_and_nested() -> None:
    rows = [[1.0, 2.0, 3.0], [4.0, 5.5, -6.0]]
    for nested in (False, True):
        call = decode_request(body([features(rows, nested)], id="r1"), NAMES, 10)
        assert call.rows == rows and call.id == "r1"
        assert call.timeout_ms is None and call.outputs == OUTPUTS


def test_one_input_per_feature_in_any_order() -> None:
    inputs = [{"name": n, "datatype": "FP32", "shape": [2], "data": [float(i), float(i + 10)]}
              for i, n in reversed(list(enumerate(NAMES)))]
    assert decode_request(body(inputs), NAMES, 10).rows == [[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]]


def test_timeout_parameter_is_microseconds_and_outputs_can_be_chosen() -> None:
    call = decode_request(body([features([[1, 2, 3]])], parameters={"timeout": 1500},
                               outputs=[{"name": "status"}, {"name": "score"}]), NAMES, 10)
    assert call.timeout_ms == 1.5
    assert call.outputs == ("score", "status")


def test_binary_tensor_extension_as_tritonclient_sends_it() -> None:
    rows = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    raw = struct.pack("<6f", *[v for r in rows for v in r])
    header = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [2, 3],
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "parameters": {"binary_data_output": True}}).encode()
    call = decode_request(header + raw, NAMES, 10, header_length=str(len(header)))
    assert call.rows == rows


BAD = {
    "malformed JSON": b'{"inputs": [',
    "not an object": b"[1, 2]",
    "no inputs": body([]),
    "wrong datatype": body([{**features([[1, 2, 3]]), "datatype": "FP64"}]),
    "wrong width": body([features([[1, 2]])]),
    "shape/data mismatch": body([{**features([[1, 2, 3]]), "shape": [2, 3]}]),
    "3-d shape": body([{**features([[1, 2, 3]]), "shape": [1, 1, 3]}]),
    "negative dim": body([{**features([[1, 2, 3]]), "shape": [-1, 3]}]),
    "no rows": body([{"name": "features", "datatype": "FP32", "shape": [0, 3], "data": []}]),
    "ragged nested": body([{"name": "features", "datatype": "FP32", "shape": [2, 3],
                            "data": [[1, 2, 3], [4, 5]]}]),
    "string value": body([{**features([[1, 2, 3]]), "data": [1, "2", 3]}]),
    "bool value": body([{**features([[1, 2, 3]]), "data": [1, True, 3]}]),
    "NaN literal": b'{"inputs":[{"name":"features","datatype":"FP32","shape":[1,3],'
                   b'"data":[1,NaN,3]}]}',
    "beyond float64": b'{"inputs":[{"name":"features","datatype":"FP32","shape":[1,3],'
                      b'"data":[1,1e400,3]}]}',
    "beyond FP32": body([features([[1, 1e39, 3]])]),
    "unknown input": body([{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]),
    "missing feature": body([{"name": n, "datatype": "FP32", "shape": [1], "data": [1]}
                             for n in NAMES[:2]]),
    "both forms": body([features([[1, 2, 3]]),
                        {"name": "a", "datatype": "FP32", "shape": [1], "data": [1]}]),
    "features twice": body([features([[1, 2, 3]]), features([[1, 2, 3]])]),
    "uneven per-feature": body([{"name": n, "datatype": "FP32", "shape": [i + 1],
                                 "data": [1.0] * (i + 1)} for i, n in enumerate(NAMES)]),
    "too many rows": body([features([[1, 2, 3]] * 11)]),
    "zero timeout": body([features([[1, 2, 3]])], parameters={"timeout": 0}),
    "string timeout": body([features([[1, 2, 3]])], parameters={"timeout": "5"}),
    "unknown output": body([features([[1, 2, 3]])], outputs=[{"name": "proba"}]),
    "id too long": body([features([[1, 2, 3]])], id="x" * MAX_ID_LENGTH),
    "deep nesting": b'{"inputs":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


@pytest.mark.parametrize("raw", BAD.values(), ids=BAD.keys())
def test_bad_requests_are_refused(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_request(raw, NAMES, 10)


@pytest.mark.parametrize("header, raw", [
    ("abc", b"{}"), ("0", b"{}"), ("99", b"{}"),
    # binary size that does not fit the shape, data shorter than announced, bytes left over
    ("", None), ("short", None), ("extra", None),
])
def test_bad_binary_requests_are_refused(header: str, raw: bytes | None) -> None:
    if raw is None:
        size = {"": 8, "short": 12, "extra": 12}[header]
        payload = struct.pack("<3f", 1, 2, 3)[: 8 if header == "short" else 12]
        payload += b"\0\0\0\0" if header == "extra" else b""
        json_part = json.dumps({"inputs": [{"name": "features", "datatype": "FP32",
                                            "shape": [1, 3],
                                            "parameters": {"binary_data_size": size}}]}).encode()
        raw, header = json_part + payload, str(len(json_part))
    with pytest.raises(BadRequest):
        decode_request(raw, NAMES, 10, header_length=header)


def test_binary_nan_is_refused() -> None:
    raw = struct.pack("<3f", 1, math.nan, 3)
    json_part = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 3],
                                        "parameters": {"binary_data_size": 12}}]}).encode()
    with pytest.raises(BadRequest, match="finite"):
        decode_request(json_part + raw, NAMES, 10, header_length=str(len(json_part)))


def test_deadline_is_the_tighter_named_one_else_the_default() -> None:
    assert choose_deadline(None, None, 50, 1000) == 50
    assert choose_deadline(20, None, 50, 1000) == 20
    assert choose_deadline(None, 80, 50, 1000) == 80
    assert choose_deadline(30, 10, 50, 1000) == 10
    with pytest.raises(BadRequest):
        choose_deadline(None, 5000, 50, 1000)
    assert parse_deadline_header(None) is None and parse_deadline_header("12.5") == 12.5
    for bad in ("x", "0", "-3", "inf", "nan"):
        with pytest.raises(BadRequest):
            parse_deadline_header(bad)


def test_answer_has_one_row_per_result_and_says_what_has_no_score() -> None:
    results = [Scored("r.0", "ok", score=0.9, label=1, model="primary", version="1"),
               Scored("r.1", "timeout")]
    answer = msgspec.json.decode(encode(response("rendezvous", "1", "r", results, OUTPUTS, {})))
    tensors = {o["name"]: o for o in answer["outputs"]}
    assert tensors["score"] == {"name": "score", "shape": [2], "datatype": "FP32",
                                "data": [0.9, None]}
    assert tensors["label"]["data"] == [1, NO_LABEL] and tensors["label"]["datatype"] == "INT64"
    assert tensors["status"]["data"] == ["ok", "timeout"]
    assert tensors["model"]["data"] == ["primary", ""]
    assert answer["id"] == "r" and answer["model_name"] == "rendezvous"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    json_values,
    st.fixed_dictionaries({"inputs": st.lists(st.fixed_dictionaries(
        {"name": st.sampled_from(["features", *NAMES, "x"]),
         "datatype": st.sampled_from(["FP32", "FP64", "BYTES"]),
         "shape": st.lists(st.integers(-2, 4), max_size=3),
         "data": json_values}), max_size=4)},
        optional={"id": st.text(max_size=10), "parameters": json_values,
                  "outputs": json_values})))
def test_any_json_is_accepted_or_refused_with_bad_request(value: object) -> None:
    try:
        call = decode_request(json.dumps(value).encode(), NAMES, 10)
    except BadRequest:
        return
    assert 1 <= len(call.rows) <= 10
    assert all(len(row) == len(NAMES) and all(math.isfinite(v) for v in row)
               for row in call.rows)


def test_progressive_parameter_is_a_boolean_passed_on_with_the_rows() -> None:
    rows = [[1.0, 2.0, 3.0]]
    assert not decode_request(body([features(rows)]), NAMES, 10).progressive
    call = decode_request(body([features(rows)], parameters={"progressive": True}), NAMES, 10)
    assert call.progressive
    with pytest.raises(BadRequest, match="progressive"):
        decode_request(body([features(rows)], parameters={"progressive": "yes"}), NAMES, 10)


def test_a_provisional_result_does_not_answer_a_gateway_row() -> None:
    from rendezvous.gateway.pending import Pending

    async def scenario() -> None:  # a waiter lives on the event loop
        pending = Pending()
        waiter = pending.add(["r.0"])
        pending.resolve(Scored("r.0", "fallback", score=0.7, model="canary", provisional=True))
        assert waiter.missing == ["r.0"] and pending.provisional == 1
        assert not waiter.done.done()
        pending.resolve(Scored("r.0", "ok", score=0.9, model="primary"))
        assert waiter.results["r.0"].model == "primary" and waiter.done.done()

    asyncio.run(scenario())
