"""The HTTP gateway end to end, called with tritonclient's HTTP client (a real OIP client
no one here wrote) against the real broker, Redis, workers and serve."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from rendezvous.local.pipeline import gateway_address
from rendezvous.local.supervisor import Supervisor
from rendezvous.model import load_model, resolve_model, sample_events
from rendezvous.settings import Settings

pytestmark = pytest.mark.integration

MODEL = "rendezvous"


def start_gateway(supervisor: Supervisor) -> str:
    """Start ``rendezvous gateway`` on a free port; its ``host:port``."""
    return gateway_address(supervisor.start("gateway", ["gateway", "--port", "0"]))


@pytest.fixture
def pipeline(settings: Settings, supervisor: Supervisor) -> triton.InferenceServerClient:
    """Workers, serve and the gateway running; a tritonclient for the gateway."""
    supervisor.start("primary", ["worker", "--model", "primary"])
    supervisor.start("canary", ["worker", "--model", "canary"])
    supervisor.start("serve", ["serve"])
    client = triton.InferenceServerClient(url=start_gateway(supervisor))
    yield client
    client.close()


def rows(settings: Settings, n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    names = load_model(resolve_model(settings.models_dir, "primary")).manifest.feature_names
    events = sample_events(n, seed=seed)
    return np.array([[e["features"][f] for f in names] for e in events], np.float32), names


def features_input(matrix: np.ndarray) -> triton.InferInput:
    tensor = triton.InferInput("features", list(matrix.shape), "FP32")
    tensor.set_data_from_numpy(matrix)  # binary tensor extension, tritonclient's default
    return tensor


def texts(result: triton.InferResult, name: str) -> list[str]:
    """A BYTES output as strings (tritonclient gives str from JSON, bytes from binary)."""
    return [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy(name)]


def test_live_ready_and_metadata(settings: Settings,
                                 pipeline: triton.InferenceServerClient) -> None:
    client = pipeline
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.get_server_metadata()["name"] == "rendezvous"
    meta = client.get_model_metadata(MODEL)
    _, names = rows(settings, 1, seed=0)
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, len(names)]},
                              *({"name": n, "datatype": "FP32", "shape": [-1]} for n in names)]
    assert meta["parameters"]["feature_names"].split(",") == names
    version = meta["versions"][0]
    assert client.get_model_metadata(MODEL, model_version=version)["name"] == MODEL
    assert not client.is_model_ready("no-such-model")


def test_batch_of_8_rows_scored_by_the_primary(settings: Settings,
                                               pipeline: triton.InferenceServerClient) -> None:
    matrix, _ = rows(settings, 8, seed=11)
    # A fresh pipeline stalls on its first requests (seen: 1.3 s); warm it, then give a
    # generous deadline (5 s): this test is about the round trip, not the clock.
    pipeline.infer(MODEL, [features_input(matrix[:1].copy())], timeout=5_000_000)
    started = time.monotonic()
    result = pipeline.infer(MODEL, [features_input(matrix)], request_id="batch8",
                            timeout=5_000_000)
    elapsed_ms = (time.monotonic() - started) * 1000
    assert texts(result, "status") == ["ok"] * 8 and texts(result, "model") == ["primary"] * 8
    prediction = load_model(resolve_model(settings.models_dir, "primary")).predict(matrix)
    want, labels = prediction.scores, np.asarray(prediction.labels)
    np.testing.assert_allclose(result.as_numpy("score"), want, atol=1e-5)
    assert result.as_numpy("label").tolist() == np.asarray(labels).tolist()
    response = result.get_response()
    assert response["id"] == "batch8" and response["parameters"]["versions"] == "primary:1"
    print(f"batch of 8: {elapsed_ms:.1f} ms at the client, "
          f"gateway {response['parameters']['gateway_ms']} ms, "
          f"pipeline latency {response['parameters']['latency_ms']} ms")


def test_one_ms_timeout_is_answered_timeout(settings: Settings,
                                            pipeline: triton.InferenceServerClient) -> None:
    matrix, _ = rows(settings, 1, seed=12)
    pipeline.infer(MODEL, [features_input(matrix)], timeout=2_000_000)  # warm
    started = time.monotonic()
    result = pipeline.infer(MODEL, [features_input(matrix)], timeout=1000)  # microseconds
    elapsed_ms = (time.monotonic() - started) * 1000
    assert texts(result, "status") == ["timeout"]
    assert np.isnan(result.as_numpy("score")[0]) and result.as_numpy("label")[0] == -1
    parameters = result.get_response()["parameters"]
    assert parameters["deadline_ms"] == 1.0
    # Not a latency target (the machine may be busy): the caller is never left waiting.
    assert elapsed_ms < 1000
    print(f"1 ms deadline: answered after {elapsed_ms:.1f} ms at the client, "
          f"{parameters['gateway_ms']} ms in the gateway "
          f"({parameters['timeouts_at_gateway']} row(s) filled by the gateway)")


def test_deadline_header_and_json_data(settings: Settings,
                                       pipeline: triton.InferenceServerClient) -> None:
    matrix, _ = rows(settings, 2, seed=13)
    tensor = triton.InferInput("features", list(matrix.shape), "FP32")
    tensor.set_data_from_numpy(matrix, binary_data=False)
    result = pipeline.infer(MODEL, [tensor], headers={"X-Deadline-Ms": "2000"},
                            outputs=[triton.InferRequestedOutput("status", binary_data=False)])
    assert result.get_response()["parameters"]["deadline_ms"] == 2000.0
    assert [o["name"] for o in result.get_response()["outputs"]] == ["status"]


def test_wrong_shape_is_400(settings: Settings, pipeline: triton.InferenceServerClient) -> None:
    matrix, _ = rows(settings, 2, seed=14)
    with pytest.raises(InferenceServerException) as raised:
        pipeline.infer(MODEL, [features_input(matrix[:, :-1].copy())])
    assert raised.value.status() == "400" and "shape" in raised.value.message()
    with pytest.raises(InferenceServerException) as unknown:
        pipeline.infer("no-such-model", [features_input(matrix)])
    assert unknown.value.status() == "400"


def test_sequential_requests_all_answered(settings: Settings,
                                          pipeline: triton.InferenceServerClient) -> None:
    """50 one-row requests one after the other, all answered by a model; prints how much
    of the time a caller waits is spent outside the pipeline (HTTP + gateway + Redis hop):
    a measurement, not an assertion."""
    matrix, _ = rows(settings, 50, seed=15)
    client_ms, pipeline_ms, statuses = [], [], []
    for row in matrix:
        started = time.monotonic()
        result = pipeline.infer(MODEL, [features_input(row[None, :].copy())], timeout=2_000_000)
        client_ms.append((time.monotonic() - started) * 1000)
        pipeline_ms.append(result.get_response()["parameters"]["latency_ms"])
        statuses += texts(result, "status")
    assert set(statuses) <= {"ok", "fallback"} and len(statuses) == 50
    outside = sorted(c - p for c, p in zip(client_ms, pipeline_ms, strict=True))
    print(f"50 sequential requests: client p50 {np.median(client_ms):.1f} ms, pipeline p50 "
          f"{np.median(pipeline_ms):.1f} ms (ts to decision), after the decision (serve's "
          f"Redis delivery + gateway + HTTP) p50 {outside[25]:.1f} ms, max {outside[-1]:.1f} ms")
