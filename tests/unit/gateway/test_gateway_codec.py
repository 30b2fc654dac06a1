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
    ModelIO,
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
    "wrong datatype": body([{**features([[1, 2, 3]]), "datatype": "FP16"}]),
    "INT64 features tensor": body([{**features([[1, 2, 3]]), "datatype": "INT64"}]),
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
    assert all(len(row) == len(NAMES) and all(
        isinstance(v, float) and math.isfinite(v) for v in row) for row in call.rows)


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


# A model with every kind of feature, as the manifest of an imported model types them.
MIXED = ModelIO([("amount", "float32"), ("country", "string"), ("items", "int64"),
                 ("ratio", "float64")], task="multiclass", classes=["low", "mid", "high"])


def column(name: str, datatype: str, data: list, shape: list[int] | None = None) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def mixed_inputs(**override: dict) -> list[dict]:
    inputs = {"amount": column("amount", "FP32", [1.5, -2.0]),
              "country": column("country", "BYTES", ["de", "fr"]),
              "items": column("items", "INT64", [3, 0]),
              "ratio": column("ratio", "FP64", [0.25, 1e300])}
    inputs.update(override)
    return list(inputs.values())


def test_named_inputs_with_bytes_decode_into_the_models_order() -> None:
    call = decode_request(body(list(reversed(mixed_inputs()))), MIXED, 10)
    assert call.rows == [[1.5, "de", 3.0, 0.25], [-2.0, "fr", 0.0, 1e300]]
    # numbers as float (the worker's typed check wants floats), strings as str
    assert [[v.__class__ for v in row] for row in call.rows] == [[float, str, float, float]] * 2
    assert call.outputs == ("score", "label", "status", "model", "probabilities")


def test_named_inputs_take_n_by_1_shapes_nested_data_and_any_numeric_datatype() -> None:
    inputs = mixed_inputs(
        amount=column("amount", "INT64", [[7], [8]], [2, 1]),
        country=column("country", "BYTES", [["de"], ["x, y \u00e9"]], [2, 1]),
        items=column("items", "FP32", [3.0, 4.0]))
    assert decode_request(body(inputs), MIXED, 10).rows == [[7.0, "de", 3.0, 0.25],
                                                           [8.0, "x, y \u00e9", 4.0, 1e300]]


def test_named_inputs_in_the_binary_extension_as_tritonclient_sends_them() -> None:
    import numpy as np
    import tritonclient.http as triton

    def tensor(name: str, datatype: str, values: np.ndarray) -> triton.InferInput:
        t = triton.InferInput(name, list(values.shape), datatype)
        t.set_data_from_numpy(values)  # binary by default
        return t

    inputs = [tensor("ratio", "FP64", np.array([0.5, 2.0])),
              tensor("country", "BYTES", np.array([["fr"], ["\u00fcber"]], dtype=object)),
              tensor("items", "INT64", np.array([1, 2], dtype=np.int64)),
              tensor("amount", "FP32", np.array([1.25, 3.5], dtype=np.float32))]
    raw, json_size = triton.InferenceServerClient.generate_request_body(inputs, request_id="b")
    call = decode_request(raw, MIXED, 10, header_length=str(json_size))
    assert call.id == "b"
    assert call.rows == [[1.25, "fr", 1.0, 0.5], [3.5, "\u00fcber", 2.0, 2.0]]


MIXED_BAD = {
    "string feature as FP32": (mixed_inputs(country=column("country", "FP32", [1.0, 2.0])),
                               "'country'"),
    "number feature as BYTES": (mixed_inputs(amount=column("amount", "BYTES", ["1", "2"])),
                                "'amount'"),
    "missing feature": ([i for i in mixed_inputs() if i["name"] != "items"], "'items'"),
    "features tensor of a model with strings": (
        [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}],
        "'country'"),
    "fraction for an int64 feature": (mixed_inputs(items=column("items", "FP64", [1.5, 2.0])),
                                      "'items'"),
    "beyond FP32 for a float32 feature": (
        mixed_inputs(amount=column("amount", "FP64", [1e39, 1.0])), "'amount'"),
    "numbers in BYTES data": (mixed_inputs(country=column("country", "BYTES", [1.0, 2.0])),
                              "'country'"),
    "strings in FP32 data": (mixed_inputs(amount=column("amount", "FP32", ["1", 2.0])),
                             "'amount'"),
    "uneven rows": (mixed_inputs(country=column("country", "BYTES", ["de"])), "'country'"),
    "[N, 2] for one feature": (
        mixed_inputs(ratio=column("ratio", "FP64", [1.0, 2.0, 3.0, 4.0], [2, 2])), "'ratio'"),
    "unsupported datatype": (mixed_inputs(items=column("items", "INT32", [1, 2])), "'items'"),
}


@pytest.mark.parametrize("inputs, named", MIXED_BAD.values(), ids=MIXED_BAD.keys())
def test_a_value_that_does_not_fit_its_feature_is_refused_naming_it(inputs: list[dict],
                                                                     named: str) -> None:
    with pytest.raises(BadRequest, match=named):
        decode_request(body(inputs), MIXED, 10)


def test_binary_bytes_that_are_not_utf8_or_do_not_add_up_are_refused() -> None:
    good = struct.pack("<I", 2) + b"de"
    for payload, size in ((struct.pack("<I", 2) + b"\xff\xfe", 1),  # not UTF-8
                          (good, 2),  # two elements announced, one given
                          (good + b"x", 1),  # a byte after the elements
                          (struct.pack("<I", 9) + b"de", 1)):  # length past the data
        header = json.dumps({"inputs": [
            column("amount", "FP32", [1.0]), column("items", "INT64", [1]),
            column("ratio", "FP64", [1.0]),
            {"name": "country", "datatype": "BYTES", "shape": [size],
             "parameters": {"binary_data_size": len(payload)}}]}).encode()
        with pytest.raises(BadRequest, match="'country'"):
            decode_request(header + payload, MIXED, 10, header_length=str(len(header)))


def test_features_tensor_in_fp64_and_checked_against_the_features_dtypes() -> None:
    numeric = ModelIO([("a", "float32"), ("n", "int64"), ("b", "float64")])
    tensor = {**features([[1.0, 2.0, 1e300]]), "datatype": "FP64"}
    assert decode_request(body([tensor]), numeric, 10).rows == [[1.0, 2.0, 1e300]]
    with pytest.raises(BadRequest, match="'n'"):
        decode_request(body([features([[1.0, 2.5, 3.0]])]), numeric, 10)
    with pytest.raises(BadRequest, match="'a'"):
        decode_request(body([{**features([[1e39, 2.0, 3.0]]), "datatype": "FP64"}]), numeric,
                       10)


def test_a_feature_named_features_is_that_feature() -> None:
    io = ModelIO([("features", "float32"), ("b", "float32")])
    assert not io.matrix
    call = decode_request(body([column("features", "FP32", [1.0]), column("b", "FP32", [2.0])]),
                          io, 10)
    assert call.rows == [[1.0, 2.0]]


def test_each_task_has_its_outputs() -> None:
    regression = ModelIO([("a", "float32")], task="regression", classes=[])
    assert regression.outputs == ("score", "status", "model")
    assert ModelIO.numeric(["a"]).outputs == OUTPUTS
    with pytest.raises(BadRequest, match="label"):
        decode_request(body([column("a", "FP32", [1.0])], outputs=[{"name": "label"}]),
                       regression, 10)
    call = decode_request(body(mixed_inputs(), outputs=[{"name": "probabilities"}]), MIXED, 10)
    assert call.outputs == ("probabilities",)


def answer_of(results: list[Scored], io: ModelIO) -> tuple[dict, dict]:
    answer = msgspec.json.decode(encode(response("m", "1", None, results, io.outputs, {}, io)))
    return {o["name"]: o for o in answer["outputs"]}, answer["parameters"]


def test_multiclass_answer_has_probabilities_n_by_k_in_the_manifests_class_order() -> None:
    results = [
        Scored("r.0", "ok", score=0.7, label="high", model="primary", version="1",
               probabilities={"mid": 0.2, "high": 0.7, "low": 0.1}),
        Scored("r.1", "timeout"),
        Scored("r.2", "rejected", reason="feature 'country' must be a string"),
    ]
    tensors, parameters = answer_of(results, MIXED)
    assert tensors["probabilities"] == {
        "name": "probabilities", "shape": [3, 3], "datatype": "FP32",
        "data": [0.1, 0.2, 0.7, None, None, None, None, None, None]}  # null: NaN to clients
    assert parameters["classes"] == '["low","mid","high"]'
    # string classes: label is BYTES, "" for a row without one (as `model` says "")
    assert tensors["label"] == {"name": "label", "shape": [3], "datatype": "BYTES",
                                "data": ["high", "", ""]}
    assert tensors["score"]["data"] == [0.7, None, None]
    assert list(tensors) == ["score", "label", "status", "model", "probabilities"]


def test_integer_classes_regression_and_a_label_of_another_type() -> None:
    ints = ModelIO([("a", "float32")], task="multiclass", classes=[0, 1, 2])
    tensors, parameters = answer_of([Scored("r.0", "ok", score=0.5, label=2,
                                            probabilities={"0": 0.2, "1": 0.3, "2": 0.5}),
                                     Scored("r.1", "timeout")], ints)
    assert tensors["label"]["datatype"] == "INT64" and tensors["label"]["data"] == [2, NO_LABEL]
    assert tensors["probabilities"]["data"] == [0.2, 0.3, 0.5, None, None, None]
    assert parameters["classes"] == "[0,1,2]"
    # a result whose label an INT64 tensor cannot hold: the answer says BYTES instead
    tensors, _ = answer_of([Scored("r.0", "ok", score=0.5, label="2"), Scored("r.1", "timeout")],
                           ints)
    assert tensors["label"] == {"name": "label", "shape": [2], "datatype": "BYTES",
                                "data": ["2", ""]}
    regression = ModelIO([("a", "float32")], task="regression", classes=[])
    tensors, parameters = answer_of([Scored("r.0", "ok", score=1234.5)], regression)
    assert list(tensors) == ["score", "status", "model"] and "classes" not in parameters
    assert tensors["score"]["datatype"] == "FP64"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries(
    {"name": st.sampled_from(["features", *MIXED.names, "x"]),
     "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES"]),
     "shape": st.sampled_from([[1], [2], [1, 1], [2, 1], [1, 4]]),
     "data": st.lists(st.one_of(st.floats(allow_nan=False), st.integers(-2**70, 2**70),
                                st.text(max_size=3)), max_size=4)}), max_size=5))
def test_any_inputs_for_a_mixed_model_give_typed_rows_or_bad_request(inputs: list) -> None:
    try:
        call = decode_request(json.dumps({"inputs": inputs}).encode(), MIXED, 10)
    except BadRequest:
        return
    for row in call.rows:
        amount, country, items, ratio = row
        assert isinstance(country, str)
        assert isinstance(amount, float) and isinstance(items, float)
        assert isinstance(ratio, float) and math.isfinite(ratio)
        assert abs(amount) <= 3.5e38 and items == int(items)
