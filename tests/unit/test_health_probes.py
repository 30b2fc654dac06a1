"""The metrics port's probes: /healthz alive at once, /readyz 503 until the component
announced ready, /metrics still Prometheus' exposition."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from rendezvous import readiness
from rendezvous.metrics import start_server


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setattr(readiness, "_announced", readiness.threading.Event())
    server = start_server(0, "127.0.0.1")
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_healthz_answers_before_ready(port: int) -> None:
    assert get(port, "/healthz") == (200, "alive\n")


def test_readyz_turns_200_when_the_component_announces_ready(
        port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert get(port, "/readyz") == (503, "not ready\n")
    readiness.announce_ready("worker", "model=primary")
    assert get(port, "/readyz") == (200, "ready\n")


def test_metrics_still_served(port: int) -> None:
    status, body = get(port, "/metrics")
    assert status == 200
    assert "# TYPE" in body
