"""The monitor page's server side: files shipped as package data, API keys and the page's
session cookie, open alerts since when, and the decision figures the page draws."""

from __future__ import annotations

import json
import tomllib
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from rendezvous.messages import Candidate, Decision
from rendezvous.monitor import http
from rendezvous.monitor.alerts import Thresholds
from rendezvous.monitor.open_alerts import open_alerts
from rendezvous.monitor.sessions import COOKIE, Sessions
from rendezvous.monitor.state import MonitorState
from rendezvous.monitor.windows import DecisionWindow

REPO = Path(__file__).resolve().parents[3]
KEY = "k" * 32


def request(port: int, path: str, headers: dict[str, str] | None = None,
            data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Any:
    keys = [SecretStr(KEY)] if getattr(request, "param", False) else []
    published = http.Published()
    found: ThreadingHTTPServer = http.serve(published, 0, sessions=Sessions(keys))
    yield found.server_address[1]
    found.shutdown()


def test_page_files_are_package_data() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "monitor/page/*" in data["tool"]["setuptools"]["package-data"]["rendezvous"]
    for name, _kind in http.PAGE_FILES.values():
        assert http.page_file(name), name
    page = http.page_file("index.html").decode()
    assert "http://" not in page.replace('xmlns="http://www.w3.org', "") and "https://" not in page


def test_open_monitor_serves_page_and_data(server: int) -> None:
    status, headers, body = request(server, "/")
    assert status == 200 and b"rendezvous monitor" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert request(server, "/page/page.js")[0] == 200
    assert request(server, "/windows")[0] == 200
    assert request(server, "/metrics")[0] == 200


@pytest.mark.parametrize("server", [True], indirect=True)
def test_keys_bearer_for_scrapers_cookie_for_the_page(server: int) -> None:
    assert request(server, "/")[0] == 200  # the page holds no data: it asks for a key
    assert request(server, "/windows")[0] == 401
    status, headers, _ = request(server, "/metrics")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert request(server, "/metrics", {"Authorization": f"Bearer {KEY}"})[0] == 200
    assert request(server, "/metrics", {"Authorization": "Bearer wrong"})[0] == 401

    assert request(server, "/login", data=b"key=wrong")[0] == 401
    refused = request(server, "/login", {"Origin": "http://evil.example"},
                      data=f"key={KEY}".encode())
    assert refused[0] == 403
    status, headers, _ = request(server, "/login", data=f"key={KEY}".encode())
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and KEY not in cookie
    session = cookie.split(";", 1)[0]
    assert session.startswith(f"{COOKIE}=")
    assert request(server, "/windows", {"Cookie": session})[0] == 200
    assert request(server, "/windows", {"Cookie": f"{COOKIE}=forged"})[0] == 401
    assert request(server, "/logout", {"Cookie": session}, data=b"")[0] == 200
    assert request(server, "/windows", {"Cookie": session})[0] == 401


def decision(rid: str, ts: float, status: str, chosen: str | None, decided: float) -> Decision:
    return Decision(rid, status, chosen, [  # type: ignore[arg-type]
        Candidate("primary", "3", 0.9, 10.0, True), Candidate("canary", "1", 0.2, 2.0, True),
    ], deadline_ms=ts + 50, decided_ms=ts + decided, ts=ts, version="3")


def test_decisions_in_time_end_to_end_results_and_versions_survive_a_restart() -> None:
    state = MonitorState(10.0)
    ts = 1_000_000.0
    for i, (status, chosen, decided) in enumerate([("ok", "primary", 10), ("ok", "primary", 60),
                                                   ("fallback", "canary", 30),
                                                   ("timeout", None, 49)]):
        state.observe_decision(decision(f"r{i}", ts, status, chosen, decided))
    view = state.window_view(1_000_000, ts)
    d = view["decisions"]
    assert d["in_time"] == 3 and d["in_time_rate"] == 0.75
    assert d["results"] == {"ok": {"primary": 2}, "fallback": {"canary": 1},
                            "timeout": {"-": 1}}
    # DDSketch (1 % relative accuracy) over 10, 30, 49, 60 ms: p50 the second, p99 the
    # third (rank 0.99 x 3, rounded down)
    assert abs(d["end_to_end_ms"]["p50"] - 30) <= 0.3
    assert abs(d["end_to_end_ms"]["p99"] - 49) <= 0.5
    assert view["models"]["primary"]["version"] == "3"
    restored = MonitorState(10.0)
    for key, value in state.take_changes():
        if value is not None:
            restored.load(key, value)
    again = restored.window_view(1_000_000, ts)
    restored_d = again["decisions"]
    assert restored_d["end_to_end_ms"] == pytest.approx(d["end_to_end_ms"])  # float round trip
    assert {**restored_d, "end_to_end_ms": None} == {**d, "end_to_end_ms": None}
    assert again["models"]["primary"]["version"] == "3"
    assert DecisionWindow.from_bytes(DecisionWindow().to_bytes()).results == {}


def window(start: int, psi: float, closed: bool = True) -> dict[str, Any]:
    return {"start": start, "end": start + 10, "closed": closed, "models": {},
            "drift": {"inputs": 500, "unfit": 0, "psi": {"a": psi, "b": 0.01}}}


def test_open_alerts_since_the_first_window_of_the_unbroken_run() -> None:
    thresholds = Thresholds(max_psi=0.25)
    views = [window(50, 0.9, closed=False), window(40, 0.5), window(30, 0.4), window(20, 0.1),
             window(10, 0.6)]
    found = open_alerts(views, thresholds)
    assert [(a["cause"], a["subject"], a["since"]) for a in found] == [("drift", "a", 30)]
    assert open_alerts([window(40, 0.1)], thresholds) == []
    gap = [window(40, 0.5), window(20, 0.5)]  # the window of 30 has no data: the run breaks
    assert open_alerts(gap, thresholds)[0]["since"] == 40
    assert json.dumps(found)  # JSON-ready for /windows
