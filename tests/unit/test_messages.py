"""The message contracts: decoding never raises, invalid input says why, encoding round-trips."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rendezvous.messages import (
    SCHEMA_VERSION,
    Decision,
    FeatureSchema,
    InputEvent,
    Invalid,
    Policy,
    Score,
    Scored,
    deadline_at,
    decode_decision,
    decode_input,
    decode_policy,
    decode_score,
    decode_scored,
    encode,
    feature_row,
)
from rendezvous.settings import Settings
from rendezvous.transport.connect import kafka_config

NAMES = ["a", "b", "c"]


def test_named_and_list_features_and_unknown_fields() -> None:
    event = decode_input(b'{"id":"r1","features":{"a":1,"b":2.5,"c":-3},"extra":{"x":1}}')
    assert isinstance(event, InputEvent)
    assert feature_row(event, NAMES) == [1.0, 2.5, -3.0]
    listed = decode_input(b'{"id":"r2","features":[1,2,3],"deadline_ms":30,"ts":1000}')
    assert isinstance(listed, InputEvent) and feature_row(listed, NAMES) == [1.0, 2.0, 3.0]
    assert deadline_at(listed, record_ts_ms=5000, default_deadline_ms=50) == 1030


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "empty record"),
        (b"{not json", "undecodable"),
        (b'{"id":"r","features":[1,NaN,3]}', "undecodable"),
        (b'{"id":"r","features":[1,1e999,3]}', "undecodable"),
        (b'{"id":"r","features":[1,{"x":2},3]}', "undecodable"),
        (b'{"id":"r","features":[1,true,3]}', "undecodable"),
        (b'{"features":[1,2,3]}', "undecodable"),
        (b'{"id":"","features":[1,2,3]}', "empty id"),
        (b'{"id":"r","features":[1,2,3],"deadline_ms":0}', "deadline_ms must be positive"),
    ],
)
def test_invalid_inputs_say_why(raw: bytes, why: str) -> None:
    result = decode_input(raw)
    assert isinstance(result, Invalid) and why in result.reason


def test_invalid_input_keeps_its_id_when_it_has_one() -> None:
    result = decode_input(b'{"id":"r9","features":[1,null]}')
    assert isinstance(result, Invalid) and result.id == "r9"


@pytest.mark.parametrize(
    ("raw", "why"),
    [(b'{"id":"r","features":{"a":1,"b":"x","c":3}}', "feature 'b' must be a number, got 'x'"),
     (b'{"id":"r","features":[1,2,"x"]}', "feature 'c' must be a number, got 'x'")],
)
def test_a_string_for_a_numeric_feature_is_refused_by_name(raw: bytes, why: str) -> None:
    result = decode_input(raw, FeatureSchema(NAMES))
    assert isinstance(result, Invalid) and result.reason == why and result.id == "r"


def test_string_features_take_strings_and_refuse_numbers() -> None:
    schema = FeatureSchema(["n", "city", "count"], strings=["city"], integers=["count"])
    good = decode_input(b'{"id":"r","features":{"n":1.5,"city":"Oslo","count":3}}', schema)
    assert not isinstance(good, Invalid) and feature_row(good, schema) == [1.5, "Oslo", 3.0]
    for raw, why in [
        (b'{"id":"r","features":{"n":1.5,"city":7,"count":3}}', "feature 'city' must be a string"),
        (b'{"id":"r","features":["1","Oslo",3]}', "feature 'n' must be a number"),
        (b'{"id":"r","features":[1,"Oslo",2.5]}', "feature 'count' must be an integer"),
    ]:
        event = decode_input(raw, schema)
        assert not isinstance(event, Invalid)
        row = feature_row(event, schema)
        assert isinstance(row, Invalid) and row.reason.startswith(why) and row.id == "r"


@pytest.mark.parametrize(
    ("features", "why"),
    [([1.0, 2.0], "expected 3 features, got 2"),
     ({"a": 1.0, "b": 2.0}, "missing ['c']"),
     ({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, "extra ['d']")],
)
def test_features_that_do_not_fit_the_model(features, why: str) -> None:
    row = feature_row(InputEvent(id="r", features=features), NAMES)
    assert isinstance(row, Invalid) and why in row.reason


@given(st.binary(max_size=200))
def test_decoding_arbitrary_bytes_never_raises(raw: bytes) -> None:
    assert isinstance(decode_input(raw), InputEvent | Invalid)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1,
                max_size=40), st.text(min_size=1, max_size=20))
def test_valid_events_round_trip(values: list[float], rid: str) -> None:
    event = InputEvent(id=rid, features=values, deadline_ms=25.0, reply_to="c", ts=1.0)
    decoded = decode_input(encode(event))
    assert decoded == event
    assert all(math.isfinite(v) for v in decoded.features)


def test_every_contract_round_trips() -> None:
    score = Score(id="r", model="primary", version="1", status="ok", score=0.9, label=1)
    scored = Scored(id="r", status="fallback", score=0.8, model="canary", answered=["canary"])
    decision = Decision(id="r", status="ok", chosen="primary", candidates=[], deadline_ms=1.0,
                        decided_ms=2.0, ts=0.0)
    assert decode_score(encode(score)) == score
    assert decode_scored(encode(scored)) == scored
    assert decode_decision(encode(decision)) == decision
    assert decode_policy(encode(Policy())) == Policy()
    assert msgspec.json.decode(encode(scored))["v"] == SCHEMA_VERSION == 2


def test_secrets_are_never_printed() -> None:
    settings = Settings(kafka={"bootstrap_servers": "b:9092", "sasl_username": "u",
                               "sasl_password": "hunter2", "security_protocol": "SASL_SSL",
                               "sasl_mechanism": "PLAIN"},
                        redis={"password": "s3cret"})
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "hunter2" not in shown and "s3cret" not in shown
    # ...but they do reach the Kafka client
    assert kafka_config(settings)["sasl.password"] == "hunter2"
    assert kafka_config(settings)["security.protocol"] == "SASL_SSL"
