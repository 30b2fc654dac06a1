"""One call through the HTTP gateway, as a user would make it with curl."""

from __future__ import annotations

import json
import shlex
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rendezvous.demo.wording import describe_result
from rendezvous.messages import FeatureValue
from rendezvous.model import sample_events
from rendezvous.settings import Settings

NO_LABEL = -1
"""What the gateway answers in ``label`` for a row without one (its codec's ``NO_LABEL``;
not imported from there: that would load the HTTP server's modules into every command)."""


def example_features(row: Mapping[str, FeatureValue] | None = None) -> list[FeatureValue]:
    """One valid row of features, in model order (the kcat and curl examples use it):
    ``row``'s values (a row of the user's data, by name in model order), else a row of the
    bundled data set."""
    if row is not None:
        return list(row.values())
    # The data set is float32: 11.69 would print as 11.6899995803833. The shortest decimal
    # of each float32 is the same FP32 input to the model, and what a user would type.
    return [float(str(np.float32(v))) if isinstance(v, float) else v
            for v in sample_events(1, seed=7, named=False)[0]["features"]]


def infer_body(request_id: str = "r1", row: Mapping[str, FeatureValue] | None = None
               ) -> dict[str, Any]:
    """An Open Inference Protocol v2 request of one row (``row``, else the bundled example):
    one ``features`` FP32 input ``[1, F]`` in model order when every value is a number,
    else one input per feature, by name (``BYTES`` for a string, ``FP32`` for a number)."""
    features = example_features(row)
    if row is not None and any(isinstance(v, str) for v in features):
        return {"id": request_id, "inputs": [
            {"name": name, "datatype": "BYTES" if isinstance(v, str) else "FP32",
             "shape": [1], "data": [v]} for name, v in row.items()]}
    return {"id": request_id, "inputs": [{"name": "features", "datatype": "FP32",
                                          "shape": [1, len(features)], "data": features}]}


def infer_url(settings: Settings, address: str) -> str:
    return f"http://{address}/v2/models/{settings.gateway.model_name}/infer"


def curl_line(settings: Settings, address: str, deadline_ms: float = 50.0,
              row: Mapping[str, FeatureValue] | None = None) -> str:
    """The curl command that scores one row (``row``, see :func:`infer_body`) through the
    gateway at ``address``."""
    body = json.dumps(infer_body(row=row), separators=(",", ":"))
    return (f"curl -s {infer_url(settings, address)} -H 'X-Deadline-Ms: {deadline_ms:g}' "
            f"-H 'Content-Type: application/json' -d {shlex.quote(body)}")


@dataclass(frozen=True)
class GatewayAnswer:
    """What one call through the gateway came back with."""

    line: str
    """In one line, in words (see :func:`~rendezvous.demo.wording.describe_result`)."""
    status: str | None = None
    """The row's status (``ok``, ``fallback``, ``timeout``, ``rejected``); None: no answer."""
    took_ms: float | None = None
    """The HTTP round trip, as this client saw it."""
    gateway_ms: float | None = None
    """The gateway's own time on the request (its ``gateway_ms`` parameter)."""

    def in_time(self, deadline_ms: float) -> bool:
        """Answered by a model (``ok`` or ``fallback``) within ``deadline_ms`` at the gateway."""
        return (self.status in ("ok", "fallback") and self.gateway_ms is not None
                and self.gateway_ms <= deadline_ms)


def call_gateway(settings: Settings, address: str, deadline_ms: float = 50.0,
                 row: Mapping[str, FeatureValue] | None = None) -> GatewayAnswer:
    """Make the :func:`curl_line` call; what came back (or why nothing did)."""
    request = urllib.request.Request(
        infer_url(settings, address), data=json.dumps(infer_body(row=row)).encode(),
        headers={"X-Deadline-Ms": f"{deadline_ms:g}", "Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
    except (OSError, ValueError) as exc:  # urllib's errors are OSErrors; bad JSON a ValueError
        return GatewayAnswer(f"no answer: {exc}")
    took_ms = (time.monotonic() - started) * 1000
    return describe_answer(answer, took_ms)


def describe_answer(answer: dict[str, Any], took_ms: float) -> GatewayAnswer:
    """The gateway's JSON answer of one row, in words (a row without score says so)."""
    outputs = {o.get("name"): (o.get("data") or [None])[0] for o in answer.get("outputs", [])}
    status = outputs.get("status")
    label = outputs.get("label")
    words = describe_result(status, outputs.get("score"), outputs.get("model"),
                            None if label == NO_LABEL else label)
    gateway_ms = (answer.get("parameters") or {}).get("gateway_ms")
    return GatewayAnswer(f"HTTP 200 in {took_ms:.1f} ms: {words}",
                         status if isinstance(status, str) else None, took_ms,
                         gateway_ms if isinstance(gateway_ms, int | float) else None)


def call_once(settings: Settings, address: str, deadline_ms: float = 50.0,
              row: Mapping[str, FeatureValue] | None = None) -> str:
    """Make the :func:`curl_line` call; what came back, in one line (or why nothing did)."""
    return call_gateway(settings, address, deadline_ms, row).line
