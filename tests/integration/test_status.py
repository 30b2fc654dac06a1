"""``rendezvous up`` started outside the checkout, and the ``rendezvous status`` command it
prints: every column of every component filled from the real /metrics endpoints."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rendezvous.demo import READY_LINE
from rendezvous.local.pipeline import component_env
from rendezvous.model.dataset import sample_events
from rendezvous.monitor.status import Row, scrape
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer

from .test_demo import Lines, run_curl_line

pytestmark = pytest.mark.integration

COLUMNS = ("processed", "invalid", "lag", "p99_batch_ms")


def _produce(settings: Settings, n: int) -> None:
    producer = make_producer(settings)
    for event in sample_events(n, seed=3, prefix="st"):
        producer.produce(settings.topic("input"), json.dumps(event).encode(), event["id"])
    producer.produce(settings.topic("input"), b"not json", b"bad-1")
    flush_or_raise(producer)


def _filled(rows: list[Row]) -> list[str]:
    """What is still missing: every empty cell, and every component that processed nothing
    yet (the decoy counts records once their file is durable, after a roll)."""
    return [f"{row.component}.{column}" for row in rows for column in COLUMNS
            if getattr(row, column) is None] + [
        f"{row.component}: {row.error}" for row in rows if row.error] + [
        f"{row.component}: nothing processed yet" for row in rows if not row.processed]


@pytest.mark.timeout(240)
def test_up_outside_the_checkout_prints_a_status_command_that_fills_every_column(
        settings: Settings, tmp_path: Path) -> None:
    env = {**os.environ, **component_env(settings), "RENDEZVOUS_STATE_DIR": str(tmp_path / "s")}
    for packaged in ("RENDEZVOUS_TOPICS_FILE", "RENDEZVOUS_MODELS_DIR"):
        env.pop(packaged)  # the package's own topics.yaml and models, from any directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "rendezvous", "up"], env=env, cwd=elsewhere,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        out.wait_for(re.escape(READY_LINE), 150)
        command = re.search(r"^\s+(rendezvous status .*)$", out.text, re.M)
        assert command, out.text
        words = shlex.split(command.group(1))
        endpoints = dict(w.split("=", 1) for w in words[2:] if w != "--endpoint")
        assert set(endpoints) == {"primary", "canary", "serve-0", "decoy", "gateway", "monitor"}

        _produce(settings, 200)
        run_curl_line(out.text)  # fills the gateway's columns
        deadline, missing = time.monotonic() + 60, ["nothing scraped"]
        while missing and time.monotonic() < deadline:
            rows = [scrape(name, url) for name, url in endpoints.items()]
            missing = _filled(rows)
            time.sleep(0.5)
        assert not missing, f"empty columns: {missing}\n{err.text}"

        # The printed command itself, as a user runs it.
        shown = subprocess.run([sys.executable, "-m", "rendezvous", *words[1:]], env=env,
                               cwd=elsewhere, capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0, shown.stderr
        table, _, models = shown.stdout.partition("models:\n")
        assert len(table.splitlines()) == 1 + len(endpoints), shown.stdout
        assert {line.split(":")[0].strip() for line in models.splitlines()} == {
            "primary", "canary"}, shown.stdout  # each model's live and shadow versions
        assert "%4|" not in out.text + err.text and "%6|" not in out.text + err.text
        assert not list(elsewhere.iterdir()), "nothing is written to the working directory"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
