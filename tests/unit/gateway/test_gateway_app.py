"""The gateway's HTTP app in process: routes, API keys, errors, deadlines, the OpenAPI
document under a property-based run. Kafka and Redis are replaced by fakes that
answer rows at once (or never), so no broker is needed here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

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
from rendezvous.model import Manifest, load_manifest, resolve_model
from rendezvous.model.manifest import Distribution, Feature, Reference, write_manifest
from rendezvous.settings import GatewaySettings, Settings

KEY = "s3cret-key-of-20-chars"


class FakeUpstream:
    """Kafka stand-in: records events; answers each row ``ok`` at once unless ``silent``."""

    def __init__(self, pending: Pending) -> None:
        self.pending = pending
        self.kafka_up = True
        self.silent = False
        self.deadline_ms = 50.0
        self.sent: list[InputEvent] = []
        self.answer: Callable[[InputEvent], Scored] = lambda event: Scored(
            event.id, "ok", score=0.25, label=0, model="primary", version="1", latency_ms=3.0)

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
            loop.call_soon(self.pending.resolve, self.answer(event))


class FakeListener:
    channel = "test.gateway.fake"
    epoch = 1

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.connected.set()

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def recover(self, waiter: Waiter, timeout_s: float) -> None: ...


def make_gateway(manifest: Manifest | None = None,
                 **gateway: object) -> tuple[Gateway, FakeUpstream]:
    gateway.setdefault("allowed_hosts", ["testserver"])  # TestClient's Host
    settings = Settings(kafka={"bootstrap_servers": "unused:9092"}, redis={"url": "redis://unused"},
                        gateway=GatewaySettings(**gateway))  # type: ignore[arg-type]
    if manifest is None:
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
        # all numbers: the [N, F] tensor, then one [N] input per feature
        assert meta["inputs"] == [
            {"name": "features", "datatype": "FP32", "shape": [-1, len(gw.feature_names)]},
            *({"name": n, "datatype": "FP32", "shape": [-1]} for n in gw.feature_names)]
        assert meta["parameters"]["feature_names"].split(",") == gw.feature_names
        assert meta["parameters"]["task"] == "binary"
        assert meta["parameters"]["classes"] == "[0,1]"
        assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [
            ("score", "FP32"), ("label", "INT64"), ("status", "BYTES"), ("model", "BYTES")]
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
    gw, _ = make_gateway(api_keys=[SecretStr(KEY), SecretStr("another-key-0123456789")])
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
        assert c.get("/openapi.json").status_code == 401  # the document needs the key too
        assert "bearer" in c.get("/openapi.json", headers=good).json()["components"][
            "securitySchemes"]
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

    upstream = Upstream(Settings(kafka={"bootstrap_servers": "127.0.0.1:1"},
                                 redis={"url": "redis://unused"}))
    upstream.start()
    try:
        time.sleep(0.5)
        assert not upstream.kafka_up
        with pytest.raises(Unavailable):
            upstream.send([InputEvent("x", [1.0])])
    finally:
        upstream.close()


# An imported multiclass model with a string feature, as `model import` would describe it;
# its reference statistics carry values that must never reach the OpenAPI document.
SECRET_MEDIAN = 4321.987
SHOP = Manifest(
    name="shop", version="3", sha256="0" * 64,
    features=[Feature("amount", "float32"), Feature("country", "string", ["de", "fr", "it"]),
              Feature("items", "int64")],
    output="score = probability of the predicted class", metrics=None,
    reference=Reference(
        levels=[0.0, 0.5, 1.0], rows=100,
        features={"amount": Distribution([12.5, SECRET_MEDIAN, 9000.25], 4400.5, 10.5),
                  "country": Distribution(categories={"de": 0.61, "fr": 0.27, "it": 0.12}),
                  "items": Distribution([1.0, 77.0, 90.0])},
        score=Distribution([0.3, 0.6, 0.9])),
    task="multiclass", classes=["low", "mid", "high"], origin="imported")


def shop_answer(event: InputEvent) -> Scored:
    return Scored(event.id, "ok", score=0.5, label="mid", model="primary", version="3",
                  latency_ms=2.0, probabilities={"low": 0.25, "mid": 0.5, "high": 0.25})


@pytest.fixture
def shop() -> Iterator[tuple[TestClient, FakeUpstream]]:
    gw, upstream = make_gateway(SHOP)
    upstream.answer = shop_answer
    with TestClient(create_app(gw)) as c:
        yield c, upstream


def shop_inputs(n: int = 2) -> list[dict]:
    return [{"name": "items", "datatype": "INT64", "shape": [n], "data": list(range(n))},
            {"name": "country", "datatype": "BYTES", "shape": [n, 1],
             "data": [["fr"], ["n\u00f6rd"]][:n]},
            {"name": "amount", "datatype": "FP32", "shape": [n], "data": [9.5, -1.0][:n]}]


def test_metadata_of_a_model_with_a_string_feature_lists_bytes_and_no_features_tensor(
        shop: tuple[TestClient, FakeUpstream]) -> None:
    client, _ = shop
    meta = client.get("/v2/models/rendezvous").json()
    assert meta["versions"] == ["3"]
    assert meta["inputs"] == [{"name": "amount", "datatype": "FP32", "shape": [-1]},
                              {"name": "country", "datatype": "BYTES", "shape": [-1]},
                              {"name": "items", "datatype": "INT64", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "score", "datatype": "FP32", "shape": [-1]},
                               {"name": "label", "datatype": "BYTES", "shape": [-1]},
                               {"name": "status", "datatype": "BYTES", "shape": [-1]},
                               {"name": "model", "datatype": "BYTES", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["parameters"] == {"feature_names": "amount,country,items",
                                  "feature_dtypes": "FP32,BYTES,INT64", "task": "multiclass",
                                  "features_from": "shop:3",
                                  "classes": '["low","mid","high"]'}


def test_named_inputs_go_into_events_in_the_models_order_and_come_back_with_probabilities(
        shop: tuple[TestClient, FakeUpstream]) -> None:
    client, upstream = shop
    answer = client.post("/v2/models/rendezvous/infer", json={"inputs": shop_inputs()})
    assert answer.status_code == 200, answer.text
    assert [e.features for e in upstream.sent] == [[9.5, "fr", 0.0], [-1.0, "n\u00f6rd", 1.0]]
    body = answer.json()
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["probabilities"] == {"name": "probabilities", "shape": [2, 3],
                                        "datatype": "FP32", "data": [0.25, 0.5, 0.25] * 2}
    assert outputs["label"]["datatype"] == "BYTES" and outputs["label"]["data"] == ["mid"] * 2
    assert body["parameters"]["classes"] == '["low","mid","high"]'
    # a row without an answer: NaN (null) probabilities, "" for its label
    upstream.silent = True
    body = client.post("/v2/models/rendezvous/infer", json={"inputs": shop_inputs(1)},
                       headers={"X-Deadline-Ms": "5"}).json()
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    assert outputs["status"] == ["timeout"] and outputs["label"] == [""]
    assert outputs["probabilities"] == [None, None, None]


def test_a_wrong_datatype_or_a_missing_feature_is_400_naming_it(
        shop: tuple[TestClient, FakeUpstream]) -> None:
    client, upstream = shop
    wrong = shop_inputs()
    wrong[1] = {"name": "country", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0]}
    answer = client.post("/v2/models/rendezvous/infer", json={"inputs": wrong})
    assert answer.status_code == 400 and "'country'" in answer.json()["error"]
    answer = client.post("/v2/models/rendezvous/infer", json={"inputs": shop_inputs()[1:]})
    assert answer.status_code == 400 and "'items'" in answer.json()["error"]
    matrix = {"name": "features", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}
    answer = client.post("/v2/models/rendezvous/infer", json={"inputs": [matrix]})
    assert answer.status_code == 400 and "'country'" in answer.json()["error"]
    assert upstream.sent == []


def test_openapi_describes_the_live_model_without_reference_statistics(
        shop: tuple[TestClient, FakeUpstream], client: TestClient,
        gateway: tuple[Gateway, FakeUpstream]) -> None:
    shop_client, _ = shop
    text = shop_client.get("/openapi.json").text
    doc = shop_client.get("/openapi.json").json()
    for statistic in (SECRET_MEDIAN, 4400.5, 10.5, 9000.25, 77.0, 0.61, 0.27):
        assert str(statistic) not in text
    infer = doc["paths"]["/v2/models/{model_name}/infer"]["post"]
    example = infer["requestBody"]["content"]["application/json"]["examples"]["one row"]["value"]
    assert example["inputs"] == [
        {"name": "amount", "datatype": "FP32", "shape": [1], "data": [0.0]},
        {"name": "country", "datatype": "BYTES", "shape": [1], "data": ["de"]},  # 1st category
        {"name": "items", "datatype": "INT64", "shape": [1], "data": [0]}]
    assert "`country` BYTES" in infer["description"] and "probabilities" in infer["description"]
    schemas = doc["components"]["schemas"]
    assert schemas["RequestInput"]["properties"]["name"]["enum"] == ["amount", "country", "items"]
    assert "probabilities" in schemas["RequestOutput"]["properties"]["name"]["enum"]
    meta = doc["paths"]["/v2/models/{model_name}"]["get"]["responses"]["200"]
    assert meta["content"]["application/json"]["example"]["inputs"][1]["datatype"] == "BYTES"
    assert shop_client.post("/v2/models/rendezvous/infer", json=example).status_code == 200
    # the bundled model: all numbers, its example all zeros (no training medians either)
    gw, _ = gateway
    bundled = client.get("/openapi.json").json()["paths"]["/v2/models/{model_name}/infer"]
    example = bundled["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert example["one row"]["value"]["inputs"] == [
        {"name": "features", "datatype": "FP32", "shape": [1, len(gw.feature_names)],
         "data": [0.0] * len(gw.feature_names)}]
    assert client.post("/v2/models/rendezvous/infer",
                       json=example["one row"]["value"]).status_code == 200


SHOP_GATEWAY, _ = make_gateway(SHOP, max_rows=50)
shop_schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SHOP_GATEWAY))


@shop_schema.include(method="POST").parametrize()
@hypothesis_settings(max_examples=40, deadline=None,
                     suppress_health_check=list(HealthCheck))
def test_openapi_property_run_of_a_string_model_finds_no_server_error(
        case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])


def test_the_gateway_reads_the_manifest_its_features_from_names(tmp_path: Path) -> None:
    version_dir = tmp_path / "shop" / "3"
    version_dir.mkdir(parents=True)
    write_manifest(SHOP, version_dir)
    settings = Settings(kafka={"bootstrap_servers": "127.0.0.1:1"}, redis={"url": "redis://unused"},
                        models_dir=tmp_path, gateway=GatewaySettings(features_from="shop"))
    gw = Gateway.create(settings)
    try:
        assert gw.manifest == SHOP and gw.io.names == ["amount", "country", "items"]
        assert [t.datatype for t in gw.model_metadata().inputs] == ["FP32", "BYTES", "INT64"]
    finally:
        gw._upstream.close()
