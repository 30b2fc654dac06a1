"""One call through the HTTP gateway, as a user would make it with curl."""

from __future__ import annotations

import json
import shlex
import time
import urllib.error
import urllib.request
from typing import Any

from rendezvous.model import sample_events
from rendezvous.settings import Settings


def example_features() -> list[float]:
    """One valid row of features, in model order (the kcat and curl examples use it)."""
    return list(sample_events(1, seed=7, named=False)[0]["features"])


def infer_body(request_id: str = "r1") -> dict[str, Any]:
    """An Open Inference Protocol v2 request of one row (features in model order)."""
    features = example_features()
    return {"id": request_id, "inputs": [{"name": "features", "datatype": "FP32",
                                          "shape": [1, len(features)], "data": features}]}


def infer_url(settings: Settings, address: str) -> str:
    return f"http://{address}/v2/models/{settings.gateway.model_name}/infer"


def curl_line(settings: Settings, address: str, deadline_ms: float = 50.0) -> str:
    """The curl command that scores one row through the gateway at ``address``."""
    body = json.dumps(infer_body(), separators=(",", ":"))
    return (f"curl -s {infer_url(settings, address)} -H 'X-Deadline-Ms: {deadline_ms:g}' "
            f"-d {shlex.quote(body)}")


def call_once(settings: Settings, address: str, deadline_ms: float = 50.0) -> str:
    """Make the :func:`curl_line` call; what came back, in one line (or why nothing did)."""
    request = urllib.request.Request(
        infer_url(settings, address), data=json.dumps(infer_body()).encode(),
        headers={"X-Deadline-Ms": f"{deadline_ms:g}", "Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError) as exc:  # urllib's errors are OSErrors; bad JSON a ValueError
        return f"no answer: {exc}"
    took_ms = (time.monotonic() - started) * 1000
    outputs = {o["name"]: o["data"][0] for o in answer.get("outputs", [])}
    return (f"HTTP 200 in {took_ms:.1f} ms: status {outputs.get('status')}, "
            f"model {outputs.get('model')}, score {outputs.get('score', float('nan')):.4f}")
