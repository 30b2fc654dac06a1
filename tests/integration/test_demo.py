"""``rendezvous demo`` and ``rendezvous up`` as a user runs them: real processes on the
session's broker, a summary that adds up, and no process left behind, even on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

import pytest

from rendezvous.demo import READY_LINE
from rendezvous.local.pipeline import component_env
from rendezvous.local.processes import alive
from rendezvous.settings import Settings

pytestmark = pytest.mark.integration

COMPONENTS = {"primary", "canary", "decoy", "serve-0", "gateway", "monitor"}
DEMO_COMPONENTS = COMPONENTS | {"primary-shadow"}


def command_env(settings: Settings, state: Path) -> dict[str, str]:
    """The session's broker and Redis, this test's topics, and a state dir of its own."""
    return {**os.environ, **component_env(settings), "RENDEZVOUS_STATE_DIR": str(state)}


def run_curl_line(text: str) -> dict[str, Any]:
    """Make the call of the ``curl`` line printed in ``text`` (without needing curl here)."""
    line = re.search(r"^\s+(curl -s .*)$", text, re.M)
    assert line, text
    words = shlex.split(line.group(1))
    url, body = words[2], words[words.index("-d") + 1]
    headers = dict(words[i + 1].split(": ", 1) for i, w in enumerate(words) if w == "-H")
    request = urllib.request.Request(url, data=body.encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return dict(json.loads(response.read()))


def started_pids(state: Path, kind: str) -> dict[str, list[int]]:
    """Every component pid the run wrote to ``<state>/<kind>/<run>/pids.json``."""
    files = list(state.glob(f"{kind}/*/pids.json"))
    assert len(files) == 1, files
    return dict(json.loads(files[0].read_text()))


def kill_components(state: Path, kind: str) -> None:
    """SIGKILL every component pid a run wrote, when its command could not stop them."""
    for pid_list in (started_pids(state, kind) if list(state.glob(f"{kind}/*/pids.json"))
                     else {}).values():
        for pid in pid_list:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def assert_none_alive(pids: dict[str, list[int]], output: str,
                      components: set[str] = COMPONENTS) -> None:
    assert set(pids) == components, pids
    survivors = [pid for pid_list in pids.values() for pid in pid_list if alive(pid)]
    assert not survivors, f"still running: {survivors}\n{output}"


class Lines:
    """Collects a child's output stream line by line in a thread; waits for a pattern."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout_s: float, other: Lines | None = None) -> None:
        """Wait for a line matching ``pattern``; on failure show these lines (and ``other``'s,
        e.g. the same child's stderr)."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(re.search(pattern, line) for line in self.lines), timeout_s)
        assert found, (f"no line matching {pattern!r} in {timeout_s} s:\n{self.text}"
                       + (other.text if other else ""))

    @property
    def text(self) -> str:
        return "".join(self.lines)


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ([\w.]+): ", re.M)
"""A log record in the text format of :mod:`rendezvous.logs`; group 1 is its logger."""


def library_lines(output: str) -> list[str]:
    """The logger of every log line in ``output`` from outside the project (raw library
    lines a user should not see)."""
    return [name for name in LOG_LINE.findall(output)
            if name != "rendezvous" and not name.startswith("rendezvous.")]


@pytest.mark.timeout(240)
def test_demo_answers_every_request_once_and_stops_everything(
        settings: Settings, tmp_path: Path) -> None:
    state, archive = tmp_path / "state", tmp_path / "archive"
    started = time.monotonic()
    # a fresh machine's matplotlib: no font cache yet, which it builds and logs at INFO
    env = {**command_env(settings, state), "MPLCONFIGDIR": str(tmp_path / "matplotlib")}
    done = subprocess.run(
        [sys.executable, "-m", "rendezvous", "demo", "--events", "300", "--rate", "150",
         "--warm-up-s", "1", "--deadline-ms", "500", "--archive", str(archive)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=220)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert not library_lines(output), output
    assert not re.findall(r"\d\.\d{7,}", output), output  # numbers as the demo words them
    summary = done.stdout
    assert re.search(r"^results\s+300\s+duplicates 0\s+missing 0$", summary, re.M), output
    by_status = re.search(r"^  by status\s+(.*)$", summary, re.M)
    assert by_status and sum(int(n.replace(",", "")) for n in
                             re.findall(r"[a-z]+ ([\d,]+)", by_status.group(1))) == 300
    assert re.search(r"^events sent\s+300 in .*\(after 150 warm-up events, not counted\)$",
                     summary, re.M), output
    files = re.search(r"^archive\s+([\d,]+) files, ([\d,]+) bytes\s+input 450\s+decisions 450",
                      summary, re.M)
    assert files and int(files.group(1)) > 0 and int(files.group(2).replace(",", "")) > 0, output
    assert list(archive.glob("input/date=*/hour=*/*.parquet"))
    assert re.search(r"^latency e2e\s+p50 [\d.]+ ms\s+p99 [\d.]+ ms\s+p99.9 [\d.]+ ms", summary,
                     re.M), output
    assert re.search(r"^HTTP gateway\s+HTTP 200 in [\d.]+ ms: status (ok|fallback), model "
                     r"(primary|canary), score [\d.]+, label [01]$", summary, re.M), output
    assert re.search(r"^  try it\s+curl -s http://127\.0\.0\.1:\d+/v2/models/rendezvous/infer ",
                     summary, re.M), output
    assert re.search(r"^monitor alerts\s+\S", summary, re.M), output
    assert re.search(r"^backtest\s+canary/\d+ vs chosen: [\d,]+ rows, agreement .* -> "
                     r"passed", summary, re.M), output
    assert re.search(r"^  report\s+\S+report\.html$", summary, re.M), output
    # the lifecycle, one line per step
    assert re.search(r"^lifecycle\s+retrain\s+primary 2 from [\d,]+ archived inputs with "
                     r"feedback: held-out AUC 0\.\d+", summary, re.M), output
    assert re.search(r"^\s+shadow\s+primary 2: [1-9][\d,]* of [\d,]+ requests recorded its "
                     r"answer as a candidate, chosen 0 times", summary, re.M), output
    assert re.search(r"^\s+backtest primary 2 vs primary: .* -> passed$", summary, re.M), output
    assert re.search(r"^\s+promote\s+primary 2 by \S+: live workers swapped 1 -> 2", summary,
                     re.M), output
    assert re.search(r"^\s+rollback primary by \S+: live workers back on 1$", summary,
                     re.M), output
    assert_none_alive(started_pids(state, "demo"), output, DEMO_COMPONENTS)
    print(f"demo test took {time.monotonic() - started:.1f} s")


@pytest.mark.timeout(150)
def test_up_prints_how_to_connect_and_ctrl_c_stops_its_components(
        settings: Settings, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "rendezvous", "up"],
                            env=command_env(settings, state), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        out.wait_for(re.escape(READY_LINE), 120)
        pids = started_pids(state, "up")
        assert all(alive(p) for pid_list in pids.values() for p in pid_list), err.text
        answer = run_curl_line(out.text)  # the printed curl line, as a user runs it
        outputs = {o["name"]: o["data"][0] for o in answer["outputs"]}
        # Answered by its deadline, by a model or in words: whether a model made it in time
        # on a loaded test machine is a measurement (bench_gateway), not an assertion here.
        assert outputs["status"] in ("ok", "fallback", "timeout"), answer
        assert (outputs["score"] is None) == (outputs["status"] == "timeout"), answer
        proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            kill_components(state, "up")  # up could not stop them: this test does, by pid
    assert status == 0, out.text + err.text
    bootstrap = settings.kafka_bootstrap()
    assert f"kcat -b {bootstrap} -t {settings.topic('input')} -P -k id1 <<< " in out.text
    assert f"kcat -b {bootstrap} -t {settings.topic('scored')} -C -o end" in out.text
    features = re.search(r'"features":\[([^\]]*)\]', out.text)
    assert features and len(features.group(1).split(",")) == 30
    assert re.search(r"^  monitor\s+http://127\.0\.0\.1:\d+/metrics$", out.text, re.M)
    assert_none_alive(pids, out.text + err.text)
