"""The monitor's page at 1280x800, as a picture for the docs: ``docs/img/monitor.png``.

Not a measurement: it starts ``rendezvous monitor`` on the bench's broker, feeds it a few
windows of made-up traffic (decisions of every status, inputs with one feature shifted in
the newest window, feedback labels, a registry entry with a shadow version), opens the page
in a headless Chromium (Debian's ``chromium``) and writes the screenshot.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from chromium import Browser, find_chromium
from rendezvous.demo.signals import run_interruptibly
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import Candidate, Decision, Feedback, ModelVersions, encode
from rendezvous.model import sample_events
from rendezvous.monitor.drift import DriftReference
from rendezvous.monitor.windows import window_start
from rendezvous.registry.control import publish_entry
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer
from scratch import scratch_settings

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "img" / "monitor.png"
WINDOW_S = 5
WINDOWS = 6
PER_WINDOW = 400


def traffic(settings: Settings, now_ms: float) -> None:
    """``WINDOWS`` past windows of decisions, inputs and labels; the newest one drifted."""
    rng = random.Random(7)
    reference = DriftReference.load(settings.models_dir, "primary")
    shift = 2 * (reference.features["mean_radius"].std or 0.0)
    producer = make_producer(settings)
    newest = window_start(now_ms, WINDOW_S * 1000) - WINDOW_S * 1000
    for w in range(WINDOWS):
        ts = newest - (WINDOWS - 1 - w) * WINDOW_S * 1000 + 100
        slow = 1.0 + w / WINDOWS  # the primary slows a little window after window
        for i in range(PER_WINDOW):
            rid = f"page-{w}-{i}"
            status = rng.choice(["ok"] * 16 + ["fallback", "fallback", "timeout", "rejected"])
            chosen = {"ok": "primary", "fallback": "canary"}.get(status)
            truth = rng.random() < 0.6
            primary = min(max(rng.gauss(0.75 if truth else 0.25, 0.2), 0), 1)
            canary = min(max(rng.gauss(0.7 if truth else 0.3, 0.25), 0), 1)
            decision = Decision(rid, status, chosen, [  # type: ignore[arg-type]
                Candidate("primary", "1", primary, rng.gauss(14, 3) * slow, True),
                Candidate("canary", "1", canary, rng.gauss(4, 1), True),
                Candidate("primary", "2", primary, rng.gauss(12, 3), True, shadow=True),
            ], deadline_ms=ts + 50, decided_ms=ts + min(rng.gauss(20, 8) * slow, 70), ts=ts,
                version="1")
            producer.produce(settings.topic("decisions"), encode(decision), rid.encode())
            producer.produce(settings.topic("feedback"), encode(Feedback(rid, int(truth))),
                             rid.encode())
        for event in sample_events(PER_WINDOW, seed=w, prefix=f"page-in-{w}-"):
            if w == WINDOWS - 1:
                event["features"]["mean_radius"] += shift
            producer.produce(settings.topic("input"), json.dumps({**event, "ts": ts}).encode(),
                             event["id"].encode())
        producer.poll(0)
    flush_or_raise(producer)


def screenshot(settings: Settings, tmp: Path, out: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        raise RuntimeError("no Chromium on PATH: apt-get install -y chromium")
    publish_entry(settings, ModelVersions("primary", "1", shadow=["2"]))
    publish_entry(settings, ModelVersions("canary", "1"))
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap(),
           "RENDEZVOUS_TOPIC_PREFIX": settings.topic_prefix,
           "RENDEZVOUS_MODELS_DIR": str(settings.models_dir)}
    sup = Supervisor(tmp / "logs", env)
    try:
        component = sup.start("monitor", ["monitor", "--window-s", str(WINDOW_S),
                                           "--grace-s", "0.5", "--port", "0"])
        port = re.findall(r"port=(\d+)", component.log.read_text())[-1]
        now = time.time() * 1000
        traffic(settings, now)
        newest = window_start(now, WINDOW_S * 1000) - WINDOW_S * 1000
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # every window counted, the lag read
            data = json.loads(urllib.request.urlopen(f"{url}/windows", timeout=5).read())
            counted = [w for w in data["windows"]
                       if w.get("decisions", {}).get("count") == PER_WINDOW]
            if len(counted) >= WINDOWS and data["pipeline"].get("lag"):
                break
            time.sleep(0.5)
        with Browser(chromium) as browser:
            browser.goto(f"{url}/")
            browser.wait_for(f"document.body.dataset.windowStart === '{newest}'",
                             what="the page to draw the newest window")
            browser.drain(0.5)
            if browser.errors:
                raise RuntimeError(f"the page logged errors: {browser.errors}")
            browser.screenshot(out)
    finally:
        sup.stop_all()


def run(out: Path = OUT) -> str:
    """Write the screenshot; returns a Markdown section."""
    with tempfile.TemporaryDirectory() as tmp_name, scratch_settings("page") as settings:
        screenshot(settings, Path(tmp_name), out)
    shown = out.relative_to(REPO / "docs") if out.is_relative_to(REPO / "docs") else out
    return "\n".join([
        "## Monitor page", "",
        f"A picture, not a measurement: `rendezvous monitor` fed {WINDOWS} windows of made-up "
        f"traffic ({PER_WINDOW} decisions, inputs and labels each, one feature shifted in the "
        "newest window), its page at 1280x800 in a headless Chromium "
        "(see [the monitor page](monitor-page.md)).", "",
        f"![the monitor page]({shown})", "",
    ])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT,
                        help="the PNG (default docs/img/monitor.png)")
    sys.exit(run_interruptibly(lambda: print(run(parser.parse_args().out))))
