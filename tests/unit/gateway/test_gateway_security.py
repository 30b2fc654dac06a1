"""The gateway's defences of issue 31 (items 4, 7 and 9), in process: rows counted from the
shapes before any data is decoded, a limit on requests and on large bodies (503 +
Retry-After before the body is read), /metrics and /openapi.json behind the key, 503s
without the text of Kafka's errors, Content-Type, Host and Origin checks, CORS as a
setting, and API keys of at least 16 characters.

Requests go to the ASGI app directly (:func:`call`), so a test sees whether the app ever
asked for a refused request's body."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from starlette.testclient import TestClient

from rendezvous.gateway import Gateway, create_app
from rendezvous.gateway.codec import decode_request
from rendezvous.gateway.errors import BadRequest, Unavailable
from rendezvous.gateway.pending import Pending, Waiter
from rendezvous.messages import InputEvent, Scored
from rendezvous.model import load_manifest, resolve_model
from rendezvous.settings import GatewaySettings, Settings

KEY = "k" * 12 + "-long-enough-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
INFER = "/v2/models/rendezvous/infer"
MiB = 1024 * 1024


# --- fakes of Kafka and Redis (as in test_gateway_app) ----------------------------------------

class FakeUpstream:
    """Kafka stand-in: records events; answers each row ``ok`` at once unless ``silent``."""

    def __init__(self, pending: Pending) -> None:
        self.pending = pending
        self.kafka_up = True
        self.silent = False
        self.deadline_ms = 50.0
        self.sent: list[InputEvent] = []

    def start(self) -> None: ...

    def close(self) -> None: ...

    def send(self, events: list[InputEvent]) -> None:
        self.sent.extend(events)
        if not self.silent:
            loop = asyncio.get_running_loop()
            for event in events:
                loop.call_soon(self.pending.resolve, Scored(
                    event.id, "ok", score=0.25, label=0, model="primary", version="1",
                    latency_ms=3.0))


class FakeListener:
    channel = "test.gateway.fake"
    epoch = 1

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.connected.set()

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def recover(self, waiter: Waiter, timeout_s: float) -> None: ...


def make_gateway(manifest: Any = None, **gateway: object) -> tuple[Gateway, FakeUpstream]:
    gateway.setdefault("allowed_hosts", ["testserver"])  # TestClient's Host
    settings = Settings(kafka={"bootstrap_servers": "unused:9092"}, redis={"url": "redis://unused"},
                        gateway=GatewaySettings(**gateway))  # type: ignore[arg-type]
    if manifest is None:
        manifest = load_manifest(resolve_model(settings.models_dir, "primary"))
    pending = Pending()
    upstream = FakeUpstream(pending)
    return Gateway(settings, manifest, upstream, FakeListener(), pending), upstream  # type: ignore[arg-type]


def infer_body(gw: Gateway) -> dict:
    return json.loads(features_body(width=len(gw.feature_names)))


# --- driving the ASGI app ------------------------------------------------------------------

class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes,
                 body_read: bool) -> None:
        self.status, self.headers, self.body, self.body_read = status, headers, body, body_read

    def json(self) -> Any:
        return json.loads(self.body)


async def call(app: Any, path: str, body: bytes = b"", method: str = "POST",
               headers: dict[str, str] | None = None, host: str = "testserver") -> Answer:
    """One request to ``app``; ``body_read`` says whether the app asked for the body."""
    given = {"host": host, **{k.lower(): v for k, v in (headers or {}).items()}}
    if method == "POST":
        given.setdefault("content-length", str(len(body)))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8000),
             "headers": [(k.encode(), v.encode()) for k, v in given.items()]}
    read = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read:
            await asyncio.sleep(3600)  # a client that sent everything, then waits
        read = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers_out = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    data = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], headers_out, data, read)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def features_body(rows: int = 1, width: int = 30, **extra: object) -> bytes:
    return json.dumps({"inputs": [{"name": "features", "datatype": "FP32",
                                   "shape": [rows, width], "data": [1.0] * rows * width}],
                       **extra}).encode()


@pytest.fixture
def keyed() -> Iterator[tuple[TestClient, FakeUpstream]]:
    gw, upstream = make_gateway(api_keys=[SecretStr(KEY)])
    with TestClient(create_app(gw)) as c:
        yield c, upstream


# --- item 4: shapes before data, limits, bounded memory ---------------------------------------

def peak_bytes(body: bytes, io: Any, max_rows: int = 1000) -> tuple[int, str]:
    """The peak of Python allocations while decoding ``body``, and the refusal."""
    tracemalloc.start()
    try:
        with pytest.raises(BadRequest) as refused:
            decode_request(body, io, max_rows)
        return tracemalloc.get_traced_memory()[1], str(refused.value)
    finally:
        tracemalloc.stop()


def test_a_body_of_zeros_is_refused_by_its_shape_without_becoming_floats() -> None:
    """The issue's attack: megabytes of ``0,`` under a small shape. Decoding them first
    (the old code) costs ~30 bytes of Python objects per value; now the values are
    counted in the raw bytes and never built."""
    io = [f"f{i}" for i in range(30)]  # 30 float32 features
    zeros = b",".join([b"0"] * (2 * MiB))  # 4 MiB of JSON, 2 M values
    for shape in (b"[1, 30]", b"[1000, 30]", b"[2097152, 1]"):
        body = (b'{"inputs":[{"name":"features","datatype":"FP32","shape":' + shape
                + b',"data":[' + zeros + b"]}]}")
        peak, why = peak_bytes(body, io)
        assert peak < 2 * len(body), (shape, peak)  # the old code: ~60 MB here
        assert "more values than its shape" in why or "rows; a request carries" in why
    # many inputs the model does not have: refused by name before any data
    junk = b",".join(b'{"name":"x%d","datatype":"FP32","shape":[1000,30],"data":[%s]}'
                     % (i, b",".join([b"0"] * 30_000)) for i in range(40))
    peak, why = peak_bytes(b'{"inputs":[' + junk + b"]}", io)
    assert peak < 2 * len(junk) and "unknown inputs" in why


def test_strings_are_counted_too_without_being_built() -> None:
    """The per-feature form with a string feature: commas inside strings do not count."""
    from rendezvous.gateway.codec import ModelIO

    strings = ModelIO([("note", "string")])
    text = b",".join([b'"a,b"'] * (MiB // 2))
    peak, why = peak_bytes(b'{"inputs":[{"name":"note","datatype":"BYTES","shape":[1000],'
                           b'"data":[' + text + b"]}]}", strings)
    assert peak < 2 * len(text) + 4 * MiB, peak  # the old code: ~50 MB of str here
    assert "more values than its shape [1000]" in why


def test_commas_and_quotes_inside_strings_do_not_count_as_values() -> None:
    from rendezvous.gateway.codec import ModelIO

    io = ModelIO([("note", "string"), ("n", "float32")])
    notes = ['a,b', 'say "hi", then go', 'back\\slash,', '\\",\\\\",', ',,,']
    body = json.dumps({"inputs": [
        {"name": "note", "datatype": "BYTES", "shape": [5, 1], "data": [[n] for n in notes]},
        {"name": "n", "datatype": "FP64", "shape": [5], "data": [1, 2, 3, 4, 5]}]}).encode()
    assert [row[0] for row in decode_request(body, io, 10).rows] == notes
    too_many = json.dumps({"inputs": [
        {"name": "note", "datatype": "BYTES", "shape": [2], "data": notes[:3]},
        {"name": "n", "datatype": "FP64", "shape": [2], "data": [1, 2]}]}).encode()
    with pytest.raises(BadRequest, match="more values than its shape"):
        decode_request(too_many, io, 10)


def test_unread_parameters_and_outputs_are_not_built() -> None:
    io = ["a"]
    zeros = b",".join([b"0"] * MiB)
    body = (b'{"parameters":{"junk":[' + zeros + b'],"timeout":5000},"inputs":[{"name":"a",'
            b'"datatype":"FP32","shape":[1],"data":[1],"parameters":{"x":[' + zeros + b"]}}]}")
    tracemalloc.start()
    try:
        call_ = decode_request(body, io, 10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert call_.timeout_ms == 5.0 and call_.rows == [[1.0]]
    assert peak < len(body) // 4, peak
    with pytest.raises(BadRequest, match="outputs"):
        decode_request(b'{"outputs":[' + b",".join([b'{"name":"score"}'] * 10_000)
                       + b'],"inputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[1]}]}',
                       io, 10)


def test_more_requests_than_the_limit_get_503_with_retry_after_before_their_body_is_read(
        ) -> None:
    gw, upstream = make_gateway(max_concurrent=2)
    upstream.silent = True  # rows wait for their deadline: the requests stay in
    app = create_app(gw)

    async def scenario() -> tuple[list[Answer], Answer, Answer]:
        waiting = [asyncio.create_task(call(app, INFER, features_body(),
                                            headers={"X-Deadline-Ms": "300"}))
                   for _ in range(2)]
        await asyncio.sleep(0.1)
        refused = await call(app, INFER, features_body())
        done = await asyncio.gather(*waiting)
        after = await call(app, INFER, features_body(), headers={"X-Deadline-Ms": "5"})
        return done, refused, after

    done, refused, after = run(scenario())
    assert [a.status for a in done] == [200, 200]
    assert refused.status == 503 and refused.headers["retry-after"] == "1"
    assert "busy" in refused.json()["error"] and not refused.body_read
    assert after.status == 200  # the slots were given back
    assert len(upstream.sent) == 3


def test_large_bodies_share_a_memory_budget_and_small_requests_still_get_in() -> None:
    gw, upstream = make_gateway(max_body_memory=16 * MiB)
    upstream.silent = True
    app = create_app(gw)
    padded = features_body() + b" " * (9 * MiB)  # valid JSON, 9 MiB declared

    async def scenario() -> tuple[Answer, Answer, Answer]:
        first = asyncio.create_task(call(app, INFER, padded, headers={"X-Deadline-Ms": "300"}))
        await asyncio.sleep(0.2)
        second = await call(app, INFER, padded)  # 9 + 9 MiB > 16 MiB
        small = await call(app, INFER, features_body(), headers={"X-Deadline-Ms": "5"})
        return await first, second, small

    first, second, small = run(scenario())
    assert first.status == 200 and small.status == 200
    assert second.status == 503 and second.headers["retry-after"] == "1"
    assert not second.body_read


def test_a_body_declared_above_16_mib_is_refused_unread() -> None:
    gw, _ = make_gateway()
    answer = run(call(create_app(gw), INFER, b"{}",
                      headers={"content-length": str(17 * MiB)}))
    assert answer.status == 400 and not answer.body_read


def test_one_input_per_feature_still_works() -> None:
    from .test_gateway_app import SHOP

    gw, upstream = make_gateway(SHOP)
    with TestClient(create_app(gw)) as client:
        inputs = [{"name": "amount", "datatype": "FP32", "shape": [2], "data": [1.5, 2.0]},
                  {"name": "country", "datatype": "BYTES", "shape": [2, 1],
                   "data": [["de"], ["a, \"quoted\" place"]]},
                  {"name": "items", "datatype": "INT64", "shape": [2], "data": [1, 2]}]
        answer = client.post(INFER, json={"inputs": inputs})
    assert answer.status_code == 200, answer.text
    assert [e.features for e in upstream.sent] == [[1.5, "de", 1.0],
                                                   [2.0, 'a, "quoted" place', 2.0]]


# --- item 7: /metrics, /openapi.json, 503 text, Content-Type, Host, Origin, CORS -------------

def test_metrics_need_the_key_unless_made_public(
        keyed: tuple[TestClient, FakeUpstream]) -> None:
    client, _ = keyed
    answer = client.get("/metrics")
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert "rendezvous_gateway" in client.get("/metrics", headers=AUTH).text
    gw, _ = make_gateway(api_keys=[SecretStr(KEY)], metrics_public=True)
    with TestClient(create_app(gw)) as open_client:
        assert open_client.get("/metrics").status_code == 200
    gw, _ = make_gateway()  # no keys at all: open, as before
    with TestClient(create_app(gw)) as plain:
        assert plain.get("/metrics").status_code == 200


def test_openapi_needs_the_key_and_publishes_no_training_statistics() -> None:
    gw, _ = make_gateway(api_keys=[SecretStr(KEY)])
    with TestClient(create_app(gw)) as client:
        assert client.get("/openapi.json").status_code == 401
        doc = client.get("/openapi.json", headers=AUTH).json()
    assert doc["openapi"].startswith("3.")
    text = json.dumps(doc)  # floats as Python prints them, as the statistics below
    reference = gw.manifest.reference
    assert reference is not None
    published = [value for distribution in reference.features.values()
                 for value in (*distribution.quantiles, distribution.mean, distribution.std)
                 if value is not None and value not in (0.0, 1.0)]
    assert len(published) > 100
    leaked = [value for value in published if f"{value}" in text]
    assert not leaked, leaked[:5]


def test_a_503_says_nothing_of_what_kafka_said_and_the_log_keeps_it(
        caplog: pytest.LogCaptureFixture) -> None:
    detail = ("Kafka refused the request: KafkaError{code=TOPIC_AUTHORIZATION_FAILED,val=29,"
              'str="Broker: Topic authorization failed"} on rendezvous.input at 10.0.0.7:9092')
    gw, upstream = make_gateway()

    def refuse(events: object) -> None:
        raise Unavailable(detail)

    upstream.send = refuse  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING), TestClient(create_app(gw)) as client:
        answer = client.post(INFER, json=infer_body(gw))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    error = answer.json()["error"]
    for leaked in ("AUTHORIZATION", "10.0.0.7", "rendezvous.input", "KafkaError"):
        assert leaked not in error
    assert "retry" in error
    assert detail in caplog.text


CONTENT_TYPES = {
    "text/plain": 415, "text/plain;charset=UTF-8": 415,
    "application/x-www-form-urlencoded": 415, "multipart/form-data; boundary=x": 415,
    "application/xml": 415, "application/json": 200, "application/json; charset=utf-8": 200,
    "Application/JSON": 200, None: 200,  # none at all: what tritonclient sends
}


@pytest.mark.parametrize("content_type, status", CONTENT_TYPES.items(),
                         ids=[str(t) for t in CONTENT_TYPES])
def test_only_json_or_binary_content_types_are_taken(content_type: str | None,
                                                     status: int) -> None:
    gw, upstream = make_gateway()
    headers = {"content-type": content_type} if content_type else {}
    answer = run(call(create_app(gw), INFER, features_body(), headers=headers))
    assert answer.status == status, answer.body
    assert len(upstream.sent) == (1 if status == 200 else 0)
    if status == 415:
        assert "application/json" in answer.json()["error"] and not answer.body_read


def test_the_binary_extension_is_taken_as_octet_stream_or_untyped() -> None:
    import numpy as np
    import tritonclient.http as triton

    gw, upstream = make_gateway()
    width = len(gw.feature_names)
    tensor = triton.InferInput("features", [1, width], "FP32")
    tensor.set_data_from_numpy(np.ones((1, width), np.float32))
    raw, json_size = triton.InferenceServerClient.generate_request_body([tensor])
    app = create_app(gw)
    for content_type in ("application/octet-stream", None):
        headers = {"inference-header-content-length": str(json_size)}
        if content_type:
            headers["content-type"] = content_type
        assert run(call(app, INFER, raw, headers=headers)).status == 200
    assert len(upstream.sent) == 2


def test_a_host_not_served_here_is_refused_but_probes_answer_any_host() -> None:
    gw, upstream = make_gateway(allowed_hosts=None)  # the default: bind address + loopback
    app = create_app(gw)
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "127.0.0.1"):
        assert run(call(app, INFER, features_body(), host=host)).status == 200, host
    for host in ("attacker.example:8000", "evil.localhost.example", "", "127.0.0.2:8000"):
        answer = run(call(app, INFER, features_body(), host=host))
        assert answer.status == 400 and "Host" in answer.json()["error"], host
        assert not answer.body_read
        assert run(call(app, "/v2", method="GET", host=host)).status == 400
        assert run(call(app, "/v2/health/live", method="GET", host=host)).status == 200
    assert len(upstream.sent) == 5
    gw, _ = make_gateway(allowed_hosts=["*.example.com", "gateway"])
    app = create_app(gw)
    for host, status in (("api.example.com", 200), ("gateway:8000", 200),
                         ("example.com.evil", 400), ("localhost", 400)):
        assert run(call(app, "/v2", method="GET", host=host)).status == status, host


def test_default_hosts_follow_the_bind_address() -> None:
    import socket

    from rendezvous.gateway.guard import default_hosts

    assert default_hosts("127.0.0.1") == ["127.0.0.1", "localhost", "::1"]
    assert default_hosts("10.1.2.3")[0] == "10.1.2.3"
    wildcard = default_hosts("0.0.0.0")
    assert "0.0.0.0" not in wildcard and socket.gethostname() in wildcard
    assert "localhost" in wildcard


def test_a_cross_origin_request_is_refused_unless_its_origin_is_allowed() -> None:
    gw, upstream = make_gateway()
    app = create_app(gw)
    # a web page elsewhere POSTing what a browser sends without asking first
    for origin in ("https://attacker.example", "null", "http://testserver.evil"):
        answer = run(call(app, INFER, features_body(),
                          headers={"origin": origin, "content-type": "application/json"}))
        assert answer.status == 403 and not answer.body_read, origin
    same = run(call(app, INFER, features_body(), headers={"origin": "http://testserver"}))
    assert same.status == 200
    assert run(call(app, "/v2", method="OPTIONS", headers={
        "origin": "https://app.example", "access-control-request-method": "POST"})).status == 403
    assert len(upstream.sent) == 1


def test_cors_is_a_setting() -> None:
    gw, upstream = make_gateway(cors_origins=["https://app.example"])
    app = create_app(gw)
    preflight = run(call(app, INFER, method="OPTIONS", headers={
        "origin": "https://app.example", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, authorization"}))
    assert preflight.status == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    answer = run(call(app, INFER, features_body(), headers={
        "origin": "https://app.example", "content-type": "application/json"}))
    assert answer.status == 200
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    other = run(call(app, INFER, features_body(), headers={"origin": "https://other.example"}))
    assert other.status == 403
    # off by default: no CORS header for anyone
    gw, _ = make_gateway()
    plain = run(call(create_app(gw), INFER, features_body(),
                     headers={"origin": "http://testserver"}))
    assert "access-control-allow-origin" not in plain.headers


# --- item 9: API keys of at least 16 characters ----------------------------------------------

@pytest.mark.parametrize("keys", [[""], ["shrt-k3y"], ["fifteen-chars!!"], [KEY, "x" * 15],
                                  [" " * 20]])
def test_a_short_or_empty_api_key_is_refused(keys: list[str]) -> None:
    with pytest.raises(ValidationError, match="shorter than 16 characters") as refused:
        GatewaySettings(api_keys=[SecretStr(k) for k in keys])
    for key in keys:
        if key.strip():
            assert key not in str(refused.value)
    assert GatewaySettings(api_keys=[SecretStr("x" * 16)]).api_keys


def test_the_gateway_command_refuses_a_short_key_at_start_in_one_line() -> None:
    env = {**os.environ, "RENDEZVOUS_GATEWAY__API_KEYS": '["tiny-secret"]',
           "RENDEZVOUS_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
           "RENDEZVOUS_REDIS__URL": "redis://x"}
    done = subprocess.run([sys.executable, "-m", "rendezvous", "gateway", "--port", "0"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "shorter than 16 characters" in done.stderr and "Traceback" not in done.stderr
    assert "tiny-secret" not in done.stderr + done.stdout


def test_events_carry_what_was_sent(keyed: tuple[TestClient, FakeUpstream]) -> None:
    """The checks above let a well-formed keyed request through unchanged."""
    client, upstream = keyed
    answer = client.post(INFER, content=features_body(2), headers={
        **AUTH, "content-type": "application/json", "x-deadline-ms": "50"})
    assert answer.status_code == 200
    assert [len(e.features) for e in upstream.sent] == [30, 30]
    assert all(isinstance(e, InputEvent) for e in upstream.sent)


def test_the_longest_id_accepted_still_fits_the_pipeline_with_its_token() -> None:
    """The gateway's rows are ``<id>.<128-bit token>.<row>``: an id of the longest length
    the gateway accepts must not make a pipeline id serve refuses as too long."""
    from rendezvous.gateway.codec import ROW_SUFFIX_LENGTH
    from rendezvous.messages import MAX_ID_LENGTH

    gw, upstream = make_gateway(max_rows=1000)
    longest = "i" * (MAX_ID_LENGTH - ROW_SUFFIX_LENGTH)
    with TestClient(create_app(gw)) as client:
        body = {**infer_body(gw), "id": longest}
        body["inputs"][0].update(shape=[1000, 30], data=[1.0] * 30_000)
        assert client.post(INFER, json=body).status_code == 200
        too_long = {**infer_body(gw), "id": longest + "i"}
        assert client.post(INFER, json=too_long).status_code == 400
    assert max(len(e.id) for e in upstream.sent) <= MAX_ID_LENGTH
