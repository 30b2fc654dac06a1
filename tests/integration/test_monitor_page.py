"""The monitor's page in a real headless Chromium, the monitor on the real broker: it loads
without a console error, shows the numbers ``/windows`` has for the same window, the
registry's versions and the groups' lag, and a shifted feature's marker turns red within
one window while the others stay green.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped, saying so, only
where no Chromium is installed.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.chromium import Browser, find_chromium
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import Candidate, Decision, Feedback, ModelVersions, encode
from rendezvous.model import sample_events
from rendezvous.monitor.drift import DriftReference
from rendezvous.monitor.sessions import COOKIE
from rendezvous.monitor.windows import window_start
from rendezvous.registry.control import publish_entry
from rendezvous.settings import Settings
from tests.integration.test_monitor import get, produce, start_monitor, wait_for
from tests.unit.test_deploy_monitor import dashboard_expressions, referenced, rule_expressions

pytestmark = pytest.mark.integration

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on PATH: install Debian's package "
                             "(apt-get install -y chromium) to test the monitor page")
WINDOW_S = 3.0
SHIFTED = "mean_radius"


def varied_decisions(n: int, ts: float, seed: int) -> list[Decision]:
    """Decisions of every status, some decided after their deadline, with both models'
    latencies spread."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        status = rng.choice(["ok"] * 6 + ["fallback", "fallback", "timeout", "rejected"])
        chosen = {"ok": "primary", "fallback": "canary"}.get(status)
        out.append(Decision(f"page{seed}-{i}", status, chosen, [  # type: ignore[arg-type]
            Candidate("primary", "1", rng.random(), 5 + rng.random() * 40, True),
            Candidate("canary", "1", rng.random(), 1 + rng.random() * 5, True),
        ], deadline_ms=ts + 50, decided_ms=ts + rng.random() * 60, ts=ts, version="1"))
    return out


def inputs(n: int, ts: float, seed: int, shift: float = 0.0) -> list[tuple[str, bytes]]:
    events = sample_events(n, seed=seed, prefix=f"in{seed}-")
    for event in events:
        event["features"][SHIFTED] += shift
    return [(e["id"], json.dumps({**e, "ts": ts}).encode()) for e in events]


def shown(browser: Browser) -> dict[str, str]:
    """Every number the page shows with its metric name: metric -> raw value."""
    found = browser.evaluate(
        "Object.fromEntries(Array.from(document.querySelectorAll('[data-metric]'))"
        ".map(e => [e.dataset.metric, e.dataset.value]))")
    return dict(found)


def close(shown_value: str, expected: float | None) -> bool:
    if expected is None:
        return shown_value == ""
    return shown_value != "" and abs(float(shown_value) - expected) <= 1e-9 * max(1, expected)


def expected_numbers(window: dict[str, Any]) -> dict[str, float | None]:
    d = window["decisions"]
    out: dict[str, float | None] = {
        "in_time_rate": d["in_time_rate"], "rate.fallback": d["rates"]["fallback"],
        "rate.timeout": d["rates"]["timeout"],
        "latency.end_to_end.p50": d["end_to_end_ms"]["p50"],
        "latency.end_to_end.p99": d["end_to_end_ms"]["p99"],
        "disagreement": window["pair"]["disagreement"],
    }
    for status, by_model in d["results"].items():
        for model, count in by_model.items():
            out[f"results.{status}.{model}"] = count
    for model, m in window["models"].items():
        out[f"latency.{model}.p50"] = m["latency_ms"]["p50"]
        out[f"latency.{model}.p99"] = m["latency_ms"]["p99"]
    for feature, psi in window["drift"]["psi"].items():
        out[f"psi.{feature}"] = psi
    return out


def markers(browser: Browser) -> dict[str, str]:
    """feature -> state of its marker in the drift chart (red ``alert`` or green ``ok``)."""
    return dict(browser.evaluate(
        "Object.fromEntries(Array.from(document.querySelectorAll("
        "'#drift svg circle.marker')).map(e => [e.dataset.feature, e.dataset.state]))"))


@needs_chromium
def test_page_numbers_versions_lag_and_drift_marker(settings: Settings,
                                                    supervisor: Supervisor) -> None:
    assert CHROMIUM is not None
    publish_entry(settings, ModelVersions("primary", "1", shadow=["2"]))
    port = start_monitor(supervisor, "--window-s", str(WINDOW_S), "--max-psi", "0.25",
                         "--min-samples", "50")
    window_ms = int(WINDOW_S * 1000)
    # a window already over, so it closes at once: stable inputs and decisions of every kind
    past = window_start(time.time() * 1000, window_ms) - 2 * window_ms + 100
    produce(settings, "decisions", [(d.id, encode(d)) for d in varied_decisions(300, past, 1)])
    produce(settings, "input", inputs(300, past, seed=2))
    produce(settings, "feedback", [(f"page1-{i}", encode(Feedback(f"page1-{i}", i % 2)))
                                   for i in range(300)])
    ws = window_start(past, window_ms)

    def closed_window() -> dict[str, Any] | None:
        found = {w["start"]: w for w in json.loads(get(port, "/windows"))["windows"]}
        w = found.get(ws)
        complete = (w and w["closed"] and w.get("decisions", {}).get("count") == 300
                    and w.get("drift", {}).get("inputs") == 300)
        return w if complete else None

    window = wait_for(closed_window, what="the monitor to count the past window")
    with Browser(CHROMIUM) as browser:
        browser.goto(f"http://127.0.0.1:{port}/")
        browser.wait_for(f"document.body.dataset.windowStart === '{ws}'", timeout_s=15,
                         what="the page to draw the past window")
        browser.drain(0.5)
        numbers = shown(browser)
        expected = expected_numbers(window)
        wrong = {k: (numbers.get(k), v) for k, v in expected.items()
                 if k not in numbers or not close(numbers[k], v)}
        assert not wrong, f"page vs /windows (shown, expected): {wrong}"
        assert set(markers(browser).values()) == {"ok"}, markers(browser)
        # the registry's versions, and the lag of this pipeline's groups, from the broker
        browser.wait_for("document.querySelector('[data-model=\"primary\"]')"
                         "?.dataset.live === '1'", what="the live version of primary")
        assert "primary shadow 2" in browser.evaluate("document.getElementById('versions')"
                                                      ".textContent")
        try:
            browser.wait_for("document.querySelector('[data-metric=\"lag.monitor-bulk\"]')"
                             " !== null",
                             timeout_s=WINDOW_S * 4, what="the monitor's own group's lag")
        except AssertionError as exc:
            pipeline = json.loads(get(port, "/windows"))["pipeline"]
            raise AssertionError(f"{exc}; /windows has {pipeline}; page errors "
                                 f"{browser.errors}") from None

        # every series the Grafana dashboard and the alert rules name, on the live /metrics
        # (its window gauges describe this window: decisions, feedback, drift, alerts sent)
        exported = {s.name for f in text_string_to_metric_families(get(port, "/metrics"))
                    for s in f.samples}
        named = referenced(dashboard_expressions() + rule_expressions())
        named.pop("*", None)
        assert sorted(n for n in named if n not in exported) == []

        # a shifted feature now: its marker turns red within one window of that window's close
        reference = DriftReference.load(settings.models_dir, "primary")
        shift = 2 * (reference.features[SHIFTED].std or 0.0)
        now = time.time() * 1000
        produce(settings, "input", inputs(300, now, seed=3, shift=shift))
        shifted_ws = window_start(now, window_ms)
        browser.wait_for(f"document.body.dataset.windowStart === '{shifted_ws}'",
                         timeout_s=3 * WINDOW_S + 10, what="the page to draw the shifted window")
        drawn_at = time.time() * 1000
        states = markers(browser)
        assert states[SHIFTED] == "alert", states
        others = {f: s for f, s in states.items() if f != SHIFTED}
        assert others and set(others.values()) == {"ok"}, others
        closes_at = shifted_ws + window_ms + 500  # the monitor's grace in start_monitor
        assert drawn_at - closes_at <= window_ms, (
            f"red {drawn_at - closes_at:.0f} ms after its window closed")
        table_state = browser.evaluate(
            f"document.querySelector('#drift table span.marker[data-feature=\"{SHIFTED}\"]')"
            ".dataset.state")
        assert table_state == "alert"
        alerts = browser.evaluate("document.getElementById('open-alerts').textContent")
        assert SHIFTED in alerts
        browser.drain(0.5)
        assert browser.errors == [], browser.errors


@needs_chromium
def test_page_asks_for_a_key_once_and_keeps_a_session_cookie(settings: Settings,
                                                             supervisor: Supervisor) -> None:
    assert CHROMIUM is not None
    key = "page-test-key-" + "x" * 24
    component = supervisor.start("monitor", ["monitor", "--port", "0", "--window-s", "2"],
                                 env={"RENDEZVOUS_GATEWAY__API_KEYS": json.dumps([key])})
    port = int(component.log.read_text().rsplit("port=", 1)[1].split()[0])
    with Browser(CHROMIUM) as browser:
        browser.goto(f"http://127.0.0.1:{port}/")
        browser.wait_for("!document.getElementById('login').hidden", what="the key form")
        browser.evaluate("document.getElementById('key').value = 'not-the-key'; "
                         "document.querySelector('#login button').click()")
        browser.wait_for("document.getElementById('login-error').textContent",
                         what="a wrong key refused")
        browser.evaluate(f"document.getElementById('key').value = {json.dumps(key)}; "
                         "document.querySelector('#login button').click()")
        browser.wait_for("document.body.dataset.drawn", what="the page drawn once logged in")
        assert browser.evaluate("document.getElementById('login').hidden")
        assert browser.evaluate("document.getElementById('key').value") == ""
        # HttpOnly: the page's script cannot read the session; the key is in no cookie
        assert browser.evaluate("document.cookie") == ""
        cookies = browser.page("Network.getCookies")["cookies"]
        session = [c for c in cookies if c["name"] == COOKIE]
        assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
        assert key not in json.dumps(cookies)
        browser.drain(0.3)
        # the only console errors: the browser's own lines for the two 401s (no key yet,
        # the wrong key); no script error
        assert len(browser.errors) == 2 and all("401" in e for e in browser.errors), \
            browser.errors
        browser.errors.clear()
        # a reload needs no key again (leaving the page aborts its fetch under way, if any)
        browser.goto(f"http://127.0.0.1:{port}/?again")
        browser.wait_for("document.body.dataset.drawn", what="the page drawn with the cookie")
        assert browser.evaluate("document.getElementById('login').hidden")
        browser.drain(0.3)
        assert set(browser.errors) <= {"load failed: net::ERR_ABORTED"}, browser.errors
    # a scraper: the bearer header, not the cookie
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert b"rendezvous_monitor_records" in response.read()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert refused.value.code == 401
