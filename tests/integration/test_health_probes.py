"""A real worker answers the Kubernetes probes on its metrics port: /healthz while it
runs, /readyz 200 once it announced ready (partitions assigned)."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import pytest

from rendezvous.local.supervisor import Supervisor

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status(port: int, path: str) -> int | None:
    """The HTTP status of GET ``path``, or None while nothing listens yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_worker_readyz_is_200_once_ready(supervisor: Supervisor) -> None:
    port = free_port()
    supervisor.start("w1", ["worker", "--model", "primary", "--metrics-port", str(port)],
                     wait=False)
    seen: list[int | None] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and status(port, "/healthz") != 200:
        time.sleep(0.05)
    seen.append(status(port, "/readyz"))  # 503 unless it was assigned already
    supervisor.wait_ready("w1")
    assert status(port, "/healthz") == 200
    assert status(port, "/readyz") == 200
    assert seen[0] in (200, 503), f"/readyz answered {seen[0]} before the ready line"
