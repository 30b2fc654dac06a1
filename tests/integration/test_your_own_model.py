"""A user's own model, from an ``.onnx`` file to live results, one test per family.

Each family's model is exported with its library's default options (ZipMap left on
where the exporter puts it) on data the test makes itself; then, as a user would:
``init`` -> ``model import`` (primary and canary) -> ``up`` -> events by name (strings
included) and one call through the gateway. Checked: every request answered exactly
once; an ``ok`` score equals a bare ``onnxruntime.InferenceSession`` on the same row;
a forced fallback is mapped per task; the decoy's archive backtests with the right
exit code; the monitor's drift flags a shifted feature of that model and no other.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow.csv as pacsv
import pytest

from rendezvous.demo import READY_LINE
from rendezvous.local.processes import alive
from rendezvous.messages import decode_scored, is_provisional
from rendezvous.model import load_manifest
from rendezvous.model.manifest import Manifest
from rendezvous.model.quantiles import map_score
from rendezvous.model.runtime import resolve_model
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_consumer, make_producer
from tests import families
from tests.integration.test_demo import Lines, run_curl_line, started_pids

pytestmark = pytest.mark.integration

EVENTS = 300
DEADLINE_MS = 3_000.0
"""Long enough that a loaded CI machine answers every event ``ok``: this test is about
what the answer holds, not about time (the deadline benchmarks are)."""
UNREACHABLE = "primary:min_score=1e300,max_score=1e301"
"""A rule no primary answer passes: every request falls back to the canary."""


@dataclass
class Project:
    """A project directory made by ``rendezvous init``, with ``up`` running in it."""

    root: Path
    env: dict[str, str]
    family: Any
    data: dict[str, list[Any]]
    out: Lines | None = None
    proc: subprocess.Popen[str] | None = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "rendezvous", *args], cwd=self.root,
                              env=self.env, capture_output=True, text=True, timeout=180)
        if check:
            assert done.returncode == 0, f"rendezvous {' '.join(args)}:\n{done.stdout}{done.stderr}"
        return done

    def manifest(self, name: str) -> Manifest:
        return load_manifest(resolve_model(self.root / "models", name))

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` of the data file, by feature name, as the event carries it."""
        return {name: self.data[name][i] for name in self.family.features}

    def endpoint(self, pattern: str) -> str:
        assert self.out is not None
        found = re.search(pattern, self.out.text, re.M)
        assert found, self.out.text
        return found.group(1)


def _read_rows(path: Path, features: list[str]) -> dict[str, list[Any]]:
    table = pacsv.read_csv(path)
    return {name: [v if isinstance(v, str) else float(v) for v in table.column(name).to_pylist()]
            for name in features}


IN_MAKE_TEST = ["sklearn_pipeline_binary"]
"""The family `make test` runs (strings and ZipMap); `make stress` runs the others (a
multiclass LightGBM, a regressor, an onnx.helper graph) with this very test
(tests/stress/test_your_own_model_more.py)."""


@pytest.fixture(params=IN_MAKE_TEST)
def project(request: pytest.FixtureRequest, settings: Settings,
            tmp_path: Path) -> Iterator[Project]:
    """A family's primary and canary imported into a fresh project, and ``up`` running."""
    yield from running_project(request.param, settings, tmp_path)


def running_project(family: str, settings: Settings, tmp_path: Path) -> Iterator[Project]:
    """The ``project`` fixture's work, for ``family`` (a builder of tests/families.py)."""
    builder: Callable[..., Any] = getattr(families, family)
    primary, canary = builder(tmp_path / "primary", seed=1), builder(tmp_path / "canary", seed=2)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("RENDEZVOUS_")}
    env.update({
        "RENDEZVOUS_STATE_DIR": str(tmp_path / "state"),
        "RENDEZVOUS_DECOY__ROLL_SECONDS": "1",
    })
    root = tmp_path / "project"
    project = Project(root, env, primary, _read_rows(primary.data, primary.features))
    subprocess.run([sys.executable, "-m", "rendezvous", "init", str(root),
                    "--bootstrap-servers", settings.kafka_bootstrap(),
                    "--redis-url", settings.redis_url(), "--topic-prefix", settings.topic_prefix],
                   env=env, check=True, capture_output=True, timeout=60)
    for name, made in (("primary", primary), ("canary", canary)):
        project.cli("model", "import", name, str(made.onnx), "--data", str(made.data),
                    "--label", made.label)
    proc = subprocess.Popen([sys.executable, "-m", "rendezvous", "up", "--archive",
                             str(tmp_path / "archive")], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    project.proc, project.out = proc, Lines(proc.stdout)
    err = Lines(proc.stderr)
    try:
        project.out.wait_for(re.escape(READY_LINE), 150)
        yield project
    finally:
        pids = started_pids(tmp_path / "state", "up") if proc.poll() is None else {}
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
        survivors = [p for pid_list in pids.values() for p in pid_list if alive(p)]
        for pid in survivors:  # up could not stop them: this test does, then says so
            os.kill(pid, signal.SIGKILL)
        assert not survivors, f"still running: {survivors}\n{err.text}"


def produce_events(settings: Settings, events: list[dict[str, Any]]) -> None:
    producer = make_producer(settings)
    for event in events:
        producer.produce(settings.topic("input"), json.dumps(event).encode(), event["id"].encode())
    flush_or_raise(producer)


def read_scored(settings: Settings, ids: set[str], timeout_s: float = 60.0) -> dict[str, list]:
    """Every final result on the scored topic for ``ids``, by id (all of them, so that a
    duplicate shows)."""
    consumer = make_consumer(settings, settings.group(f"read-{time.time_ns()}"),
                             **{"auto.offset.reset": "earliest"})
    consumer.subscribe([settings.topic("scored")])
    found: dict[str, list] = {}
    deadline, settle = time.monotonic() + timeout_s, None
    try:
        while time.monotonic() < deadline:
            record = consumer.poll(0.2)
            if record is not None and record.error() is None and not is_provisional(
                    record.headers()):
                scored = decode_scored(record.value())
                if scored.id in ids:
                    found.setdefault(scored.id, []).append(scored)
            if settle is None and set(found) >= ids:
                settle = time.monotonic() + 2.0  # a little longer: a duplicate would show
            if settle is not None and time.monotonic() > settle:
                return found
    finally:
        consumer.close()
    missing = sorted(ids - set(found))
    raise AssertionError(f"{len(missing)} requests never answered, e.g. {missing[:5]}")


def bare_onnxruntime(path: Path, project: Project, rows: list[int]) -> dict[str, np.ndarray]:
    """The model's own outputs for data rows ``rows``, from a session this test opens itself."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a tree ensemble then adds in one order, as a worker does
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    features = project.family.features
    feeds: dict[str, Any] = {}
    if len(inputs) == 1 and inputs[0].name not in features:
        feeds[inputs[0].name] = np.array([[project.data[f][i] for f in features] for i in rows],
                                         dtype=np.float32)
    else:
        for port in inputs:
            values = [project.data[port.name][i] for i in rows]
            dtype = {"tensor(string)": object, "tensor(int64)": np.int64,
                     "tensor(double)": np.float64}.get(port.type, np.float32)
            column = np.array(values, dtype=dtype)
            feeds[port.name] = column.reshape(-1, 1) if len(port.shape) == 2 else column
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def expected_scores(project: Project, name: str, rows: list[int]) -> tuple[np.ndarray, list]:
    """(score, label) per row as the task defines them, from the bare session's outputs."""
    manifest = project.manifest(name)
    outputs = bare_onnxruntime(project.root / "models" / name / manifest.version / "model.onnx",
                               project, rows)
    signature = manifest.signature
    assert signature is not None
    if signature.probabilities is not None:
        raw = outputs[signature.probabilities]
        if not isinstance(raw, np.ndarray):  # ZipMap: a list of {class: p}
            raw = np.array([[row[c] for c in manifest.classes] for row in raw])
        if manifest.task == "binary":
            scores = raw[:, 1].astype(np.float64)
            if signature.label is not None:
                return scores, np.asarray(outputs[signature.label]).ravel().tolist()
            return scores, [manifest.classes[int(s >= 0.5)] for s in scores]
        chosen = raw.argmax(axis=1)
        return raw[np.arange(len(rows)), chosen].astype(np.float64), [
            manifest.classes[i] for i in chosen]
    assert signature.value is not None
    values = np.asarray(outputs[signature.value], dtype=np.float64).reshape(-1)
    labels = ([None] * len(rows) if manifest.task == "regression"
              else [manifest.classes[int(v >= 0.5)] for v in values])
    return values, labels


def gateway_call(project: Project, row: dict[str, Any], deadline_ms: float) -> dict[str, Any]:
    """One row through the gateway, one named input per feature (BYTES for strings)."""
    url = project.endpoint(r"curl -s (http://\S+/infer)")
    inputs = [{"name": name, "shape": [1],
               "datatype": "BYTES" if isinstance(value, str) else "FP64", "data": [value]}
              for name, value in row.items()]
    request = urllib.request.Request(
        url, data=json.dumps({"inputs": inputs}).encode(),
        headers={"Content-Type": "application/json", "X-Deadline-Ms": f"{deadline_ms:g}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    return {o["name"]: o["data"][0] for o in body["outputs"]}


def monitor_windows(project: Project) -> dict[int, dict[str, Any]]:
    base = project.endpoint(r"^\s+monitor\s+(http://[^/\s]+)/metrics$")
    with urllib.request.urlopen(f"{base}/windows", timeout=5) as response:
        return {w["start"]: w for w in json.loads(response.read())["windows"]}


def shifted(project: Project, feature: str, rows: list[int]) -> list[dict[str, Any]]:
    """Rows with ``feature`` moved far from the training data: a number by 10 reference
    standard deviations, a string to one category the model never saw."""
    reference = project.manifest("primary").reference.features[feature]
    moved = []
    for i in rows:
        row = project.row(i)
        if isinstance(row[feature], str):
            row[feature] = "never-seen-category"
        else:
            row[feature] += 10 * (reference.std or 1.0) + 1.0
        moved.append(row)
    return moved


@pytest.mark.timeout(420)
def test_a_users_model_from_onnx_file_to_live_results(project: Project,
                                                      settings: Settings) -> None:
    n_rows = len(next(iter(project.data.values())))
    rows = list(range(min(EVENTS, n_rows)))
    tag = f"{project.family.task}-{time.time_ns()}"

    # Events by name, strings included: every one answered once, by the primary, exactly.
    events = [{"id": f"{tag}-{i}", "features": project.row(i), "deadline_ms": DEADLINE_MS}
              for i in rows]
    produce_events(settings, events)
    answers = read_scored(settings, {e["id"] for e in events})
    assert all(len(found) == 1 for found in answers.values()), answers
    want_scores, want_labels = expected_scores(project, "primary", rows)
    for i, event in zip(rows, events, strict=True):
        scored = answers[event["id"]][0]
        assert scored.status == "ok" and scored.model == "primary", scored
        assert scored.score == pytest.approx(want_scores[i], rel=1e-6, abs=1e-9), scored
        assert scored.label == want_labels[i], scored
        if project.manifest("primary").task == "multiclass":
            assert scored.probabilities is not None
            assert set(scored.probabilities) == {str(c) for c in
                                                 project.manifest("primary").classes}

    # The gateway takes one named input per feature.
    answer = gateway_call(project, project.row(0), DEADLINE_MS)
    assert answer["status"] == "ok", answer
    assert answer["score"] == pytest.approx(want_scores[0], rel=1e-5), answer

    # The curl line `up` printed is a row of this model's own features: it is not rejected
    # (its 50 ms deadline may pass on a busy machine: a timeout is an answer too).
    printed = run_curl_line(project.out.text if project.out else "")
    assert {o["name"]: o["data"][0] for o in printed["outputs"]}["status"] != "rejected"

    # A wrong feature type is rejected with the feature's name.
    first = project.family.features[0]
    bad_value = 1.0 if isinstance(project.row(0)[first], str) else "a-string"
    produce_events(settings, [{"id": f"{tag}-bad", "features": {**project.row(0),
                                                                first: bad_value}}])
    rejected = read_scored(settings, {f"{tag}-bad"})[f"{tag}-bad"]
    assert len(rejected) == 1 and rejected[0].status == "rejected"
    assert first in (rejected[0].reason or ""), rejected[0]

    answered_by_primary_until = time.time() * 1000

    # Fallback: no primary answer is valid, so the canary answers, mapped per task.
    project.cli("policy", "set", "--prefer", "primary,canary", "--rule", UNREACHABLE)
    time.sleep(1.0)  # serve applies the policy from the control topic
    fallback_events = [{"id": f"{tag}-fb-{i}", "features": project.row(i),
                        "deadline_ms": DEADLINE_MS} for i in rows]
    produce_events(settings, fallback_events)
    fallbacks = read_scored(settings, {e["id"] for e in fallback_events})
    canary_scores, canary_labels = expected_scores(project, "canary", rows)
    primary_manifest, canary_manifest = project.manifest("primary"), project.manifest("canary")
    for i, event in zip(rows, fallback_events, strict=True):
        scored = fallbacks[event["id"]][0]
        assert scored.status == "fallback" and scored.model == "canary", scored
        assert scored.raw_score == pytest.approx(canary_scores[i], rel=1e-6, abs=1e-9)
        assert scored.label == canary_labels[i]
        if primary_manifest.task == "multiclass":  # never mapped: no common scale
            assert scored.score == scored.raw_score
        else:
            source = canary_manifest.reference.score_quantiles
            target = primary_manifest.reference.score_quantiles
            assert source is not None and target is not None
            from rendezvous.model.quantiles import Quantiles
            mapped = map_score(canary_scores[i], Quantiles(source.levels, source.values),
                               Quantiles(target.levels, target.values))
            assert scored.score == pytest.approx(mapped, rel=1e-6, abs=1e-9), scored
    project.cli("policy", "set", "--prefer", "primary,canary", "--rule",
                "primary:min_confidence=0")

    # Drift: one window of the data's own rows, then the next window (no other traffic of
    # this test reaches it) with one feature shifted.
    features = project.manifest("primary").features
    feature = next((f.name for f in features if f.is_string), features[0].name)
    some_window = next(iter(monitor_windows(project).values()))
    window_ms = some_window["end"] - some_window["start"]
    stable_ts = time.time() * 1000
    stable_rows = [{"id": f"{tag}-st-{i}", "features": project.row(i % n_rows), "ts": stable_ts}
                   for i in range(300)]
    produce_events(settings, stable_rows)
    time.sleep(((stable_ts // window_ms + 1) * window_ms - stable_ts + 100) / 1000)
    shifted_ts = time.time() * 1000
    moved = shifted(project, feature, [i % n_rows for i in range(300)])
    shifted_rows = [{"id": f"{tag}-sh-{i}", "features": row, "ts": shifted_ts}
                    for i, row in enumerate(moved)]
    produce_events(settings, shifted_rows)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        windows = monitor_windows(project)
        stable_window = windows.get(int(stable_ts // window_ms * window_ms)) or {}
        shifted_window = windows.get(int(shifted_ts // window_ms * window_ms)) or {}
        if (stable_window.get("drift", {}).get("inputs", 0) >= 300
                and shifted_window.get("drift", {}).get("inputs", 0) >= 300):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the monitor never binned both windows: {monitor_windows(project)}")
    psi_stable, psi_shifted = stable_window["drift"]["psi"], shifted_window["drift"]["psi"]
    assert max(psi_stable.values()) < 0.25, psi_stable
    assert psi_shifted[feature] > 0.25, psi_shifted
    assert all(v < 0.25 for f, v in psi_shifted.items() if f != feature), psi_shifted

    # The decoy's archive: a backtest of the live primary against production passes.
    archive = project.root.parent / "archive"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(archive.rglob("*.parquet")):
        time.sleep(0.5)
    report = project.root.parent / "report"
    passed = project.cli("backtest", "--archive", str(archive), "--model", "primary",
                         "--report", str(report), "--to", f"{answered_by_primary_until:.0f}",
                         check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
