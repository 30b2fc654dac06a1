"""The gateway's HTTP app in process: routes, API keys, errors, deadlines, the OpenAPI
document under a property-based run. Kafka and Redis are replaced by fakes that
answer rows at once (or never), so no broker is needed here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error
from starlette.testclient import TestClient

from rendezvous.gateway import Gateway, create_app
from rendezvous.gateway.errors import Unavailable
from rendezvous.gateway.pending import Pending, Waiter
from rendezvous.messages import InputEvent, Scored
from rendezvous.model import load_manifest, resolve_model
from rendezvous.settings import GatewaySettings, Settings

KEY = "s3cret-key"


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

    def send(self, events: Sequence[InputEvent]) -> None:
        if not self.kafka_up:
            raise Unavailable("Kafka is not reachable")
        self.sent.extend(events)
        if self.silent:
            return
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


def make_gateway(**gateway: object) -> tuple[Gateway, FakeUpstream]:
    settings = Settings(bootstrap_servers="unused:9092", redis_url="redis://unused",
                        gateway=GatewaySettings(**gateway))  # type: ignore[arg-type]
    manifest = load_manifest(resolve_model(settings.models_dir, "primary"))
    pending = Pending()
    upstream = FakeUpstream(pending)
    return Gateway(settings, manifest, upstream, FakeListener(), pending), upstream  # type: ignore[arg-type]


@pytest.fixture
def gateway() -> tuple[Gateway, FakeUpstream]:
    return make_gateway()


@pytest.fixture
def client(gateway: tuple[Gateway, FakeUpstream]) -> Iterator[TestClient]:
    with TestClient(create_app(gateway[0])) as c:
        yield c


def infer_body(gw: Gateway, n: int = 1, **extra: object) -> dict:
    width = len(gw.feature_names)
    return {"inputs": [{"name": "features", "datatype": "FP32", "shape": [n, width],
                        "data": [1.0] * (n * width)}], **extra}


def test_health_metadata_and_the_version_routes(client: TestClient,
                                                gateway: tuple[Gateway, FakeUpstream]) -> None:
    gw, _ = gateway
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2").json()["name"] == "rendezvous"
    for base in ("/v2/models/rendezvous", f"/v2/models/rendezvous/versions/{gw.manifest.version}"):
        meta = client.get(base).json()
        assert meta["inputs"] == [{"name": "features", "datatype": "FP32",
                                   "shape": [-1, len(gw.feature_names)]}]
        assert meta["parameters"]["feature_names"].split(",") == gw.feature_names
        assert {o["name"] for o in meta["outputs"]} == {"score", "label", "status", "model"}
        assert client.get(f"{base}/ready").status_code == 200
        assert client.post(f"{base}/infer", json=infer_body(gw)).status_code == 200
    for wrong in ("/v2/models/other", "/v2/models/rendezvous/versions/99"):
        answer = client.get(wrong)
        assert answer.status_code == 400 and "unknown" in answer.json()["error"]
    assert client.get("/v2/nothing/here").json() == {"error": "Not Found"}
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")


def test_infer_sends_one_event_per_row_with_the_gateways_return_address(
        client: TestClient, gateway: tuple[Gateway, FakeUpstream]) -> None:
    gw, upstream = gateway
    answer = client.post("/v2/models/rendezvous/infer",
                         json=infer_body(gw, 3, id="req-7", parameters={"timeout": 200_000}))
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == "req-7"
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    assert outputs == {"score": [0.25] * 3, "label": [0] * 3, "status": ["ok"] * 3,
                       "model": ["primary"] * 3}
    assert body["parameters"]["versions"] == "primary:1"
    assert body["parameters"]["deadline_ms"] == 200.0
    base = body["parameters"]["rendezvous_id"]
    assert base.startswith("req-7.")
    assert [e.id for e in upstream.sent] == [f"{base}.0", f"{base}.1", f"{base}.2"]
    assert {e.reply_to for e in upstream.sent} == {FakeListener.channel}
    assert {e.deadline_ms for e in upstream.sent} == {200.0}


def test_a_reused_request_id_gets_fresh_pipeline_ids(
        client: TestClient, gateway: tuple[Gateway, FakeUpstream]) -> None:
    gw, upstream = gateway
    for _ in range(2):
        answer = client.post("/v2/models/rendezvous/infer", json=infer_body(gw, id="same"))
        assert answer.json()["id"] == "same"
        assert answer.json()["outputs"][2]["data"] == ["ok"]
    assert len({e.id for e in upstream.sent}) == 2


def test_rows_without_result_are_answered_timeout_after_the_deadline(
        client: TestClient, gateway: tuple[Gateway, FakeUpstream]) -> None:
    gw, upstream = gateway
    upstream.silent = True
    answer = client.post("/v2/models/rendezvous/infer", json=infer_body(gw, 2),
                         headers={"X-Deadline-Ms": "5"})
    body = answer.json()
    assert answer.status_code == 200
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    assert outputs["status"] == ["timeout", "timeout"]
    assert outputs["score"] == [None, None] and outputs["label"] == [-1, -1]
    assert body["parameters"]["timeouts_at_gateway"] == 2
    assert body["parameters"]["gateway_ms"] >= 5.0  # not answered before the deadline


def test_bad_input_gets_400_and_nothing_is_sent(client: TestClient,
                                               gateway: tuple[Gateway, FakeUpstream]) -> None:
    gw, upstream = gateway
    for bad in (b"{nope", b'{"inputs": [{"name": "features", "datatype": "FP32", '
                          b'"shape": [1, 2], "data": [1, 2]}]}'):
        answer = client.post("/v2/models/rendezvous/infer", content=bad)
        assert answer.status_code == 400 and answer.json()["error"]
    answer = client.post("/v2/models/rendezvous/infer", json=infer_body(gw),
                         headers={"X-Deadline-Ms": "soon"})
    assert answer.status_code == 400
    assert upstream.sent == []


def test_kafka_down_gets_503(client: TestClient, gateway: tuple[Gateway, FakeUpstream]) -> None:
    gw, upstream = gateway
    upstream.kafka_up = False
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/models/rendezvous/ready").status_code == 503
    answer = client.post("/v2/models/rendezvous/infer", json=infer_body(gw))
    assert answer.status_code == 503 and "Kafka" in answer.json()["error"]
    assert client.get("/v2/health/live").status_code == 200


def test_api_keys(caplog: pytest.LogCaptureFixture) -> None:
    gw, _ = make_gateway(api_keys=[SecretStr(KEY), SecretStr("other")])
    with TestClient(create_app(gw)) as c:
        assert c.get("/v2/health/live").status_code == 200  # probes need no key
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY},
                        {"Authorization": f"Basic {KEY}"}):
            answer = c.post("/v2/models/rendezvous/infer", json=infer_body(gw), headers=headers)
            assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
            assert c.get("/v2/models/rendezvous", headers=headers).status_code == 401
        good = {"Authorization": f"Bearer {KEY}"}
        assert c.post("/v2/models/rendezvous/infer", json=infer_body(gw),
                      headers=good).status_code == 200
        assert "bearer" in c.get("/openapi.json").json()["components"]["securitySchemes"]
    assert KEY not in repr(gw.settings) and KEY not in caplog.text


APP_GATEWAY, _ = make_gateway(max_rows=50)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(APP_GATEWAY))


@schema.parametrize()
@hypothesis_settings(max_examples=60, deadline=None,
                     suppress_health_check=list(HealthCheck))
def test_openapi_property_run_finds_no_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])


fp32 = st.floats(allow_nan=False, allow_infinity=False, width=32)


@hypothesis_settings(max_examples=150, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.integers(1, 4), data=st.data(),
       mutation=st.sampled_from([None, "drop", "extra", "datatype", "shape", "null", "nest"]))
def test_valid_and_nearly_valid_requests_get_200_or_400(
        client: TestClient, gateway: tuple[Gateway, FakeUpstream], rows: int,
        data: st.DataObject, mutation: str | None) -> None:
    gw, upstream = gateway
    width = len(gw.feature_names)
    values = data.draw(st.lists(fp32, min_size=rows * width, max_size=rows * width))
    tensor: dict = {"name": "features", "datatype": "FP32", "shape": [rows, width],
                    "data": values}
    if mutation == "drop":
        tensor["data"] = values[1:]
    elif mutation == "extra":
        tensor["data"] = [*values, 1.0]
    elif mutation == "datatype":
        tensor["datatype"] = data.draw(st.sampled_from(["FP16", "INT64", "BYTES", "fp32"]))
    elif mutation == "shape":
        tensor["shape"] = data.draw(st.lists(st.integers(-1, 40), max_size=3))
    elif mutation == "null":
        tensor["data"] = [None, *values[1:]]
    elif mutation == "nest":
        tensor["data"] = [values[i * width:(i + 1) * width] for i in range(rows)]
    before = len(upstream.sent)
    answer = client.post("/v2/models/rendezvous/infer", json={"inputs": [tensor]})
    if mutation in (None, "nest"):
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["shape"] == [rows]
        assert len(upstream.sent) - before == rows
    else:
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 400:
            assert len(upstream.sent) == before


def test_upstream_without_a_broker_is_down_and_refuses() -> None:
    from rendezvous.gateway.upstream import Upstream

    upstream = Upstream(Settings(bootstrap_servers="127.0.0.1:1", redis_url="redis://unused"))
    upstream.start()
    try:
        time.sleep(0.5)
        assert not upstream.kafka_up
        with pytest.raises(Unavailable):
            upstream.send([InputEvent("x", [1.0])])
    finally:
        upstream.close()
