"""Model lifecycle under steady open-loop load: shadow v2, promote v2, roll back to v1.

Acceptance of issue 14: no request lost or answered twice, no more timeouts than the
steady state, decisions show v1 chosen before the promote, v2 after it and v1 after the
rollback, and v2's shadow answers recorded but never chosen.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest

from rendezvous.demo.topic_records import TopicRecords
from rendezvous.demo.workload import OpenLoop
from rendezvous.local.pipeline import component_env as pipeline_env
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import BacktestVerdict, Decision, decode_decision, decode_scored
from rendezvous.model import sample_events
from rendezvous.model.manifest import load_manifest
from rendezvous.registry import publish_verdict, read_registry
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise
from tests.model_versions import copy_version
from tests.streams import producer_for

pytestmark = pytest.mark.integration

RATE = 300.0
PHASE_S = 5.0
WARM_UP_S = 3.0
"""Left out of every count: a fresh pipeline stalls in its first seconds (DESIGN.md)."""
DEADLINE_MS = 500.0


@pytest.fixture
def models_dir(tmp_path: Path, settings: Settings) -> Path:
    """A writable copy of the bundled models (version 1 of each)."""
    target = tmp_path / "models"
    for name in ("primary", "canary"):
        shutil.copytree(Path(settings.models_dir) / name / "1", target / name / "1")
    return target


@pytest.fixture
def component_env(settings: Settings, models_dir: Path) -> dict[str, str]:
    return {**pipeline_env(settings), "RENDEZVOUS_MODELS_DIR": str(models_dir)}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rendezvous", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def wait_for_log(supervisor: Supervisor, name: str, text: str, count: int = 1,
                 timeout_s: float = 30) -> None:
    log = supervisor.components[name].log
    give_up = time.monotonic() + timeout_s
    while log.read_text().count(text) < count:
        assert time.monotonic() < give_up, f"{name} never logged {text!r} {count}x"
        time.sleep(0.05)


@pytest.mark.timeout(300)
def test_shadow_promote_rollback_under_load(settings: Settings, supervisor: Supervisor,
                                             models_dir: Path,
                                             component_env: dict[str, str]) -> None:
    import os

    env = {**os.environ, **component_env}
    settings = settings.model_copy(update={"models_dir": models_dir})
    supervisor.start("primary", ["worker", "--model", "primary", "--instance-id", "p0"])
    supervisor.start("primary-shadow", ["worker", "--model", "primary", "--shadow"])
    supervisor.start("canary", ["worker", "--model", "canary"])
    supervisor.start("serve", ["serve"])

    rows = [e["features"] for e in sample_events(2000, seed=14)]
    producer = producer_for(settings)
    loop = OpenLoop(producer, settings.topic("input"), RATE,
                    lambda i, ts: (f"lc-{i}".encode(), msgspec.json.encode(
                        {"id": f"lc-{i}", "features": rows[i % len(rows)], "ts": ts,
                         "deadline_ms": DEADLINE_MS})), partitions=4)
    stop = threading.Event()
    sender = loop.start(stop)
    marks: dict[str, int] = {}

    def mark(name: str) -> None:
        marks[name] = loop.sent

    time.sleep(WARM_UP_S)
    mark("steady")
    time.sleep(PHASE_S)  # steady state, v1 live
    mark("shadow")
    # a new version appears (what a retrain writes, as far as registry and workers can tell)
    copy_version(models_dir / "primary" / "1", models_dir, "2")
    shadowed = cli(env, "model", "shadow", "primary", "2", "--actor", "ci")
    assert shadowed.returncode == 0, shadowed.stderr
    wait_for_log(supervisor, "primary-shadow", "swapped versions none -> 2")
    mark("shadowing")
    time.sleep(PHASE_S)

    refused = cli(env, "model", "promote", "primary", "2")
    assert refused.returncode == 1 and "no backtest" in refused.stderr
    publish_verdict(settings, BacktestVerdict(
        "primary", "2", True, "primary:1",
        sha256=load_manifest(models_dir / "primary" / "2").sha256))
    mark("promote")
    promoted = cli(env, "model", "promote", "primary", "2", "--actor", "ci")
    assert promoted.returncode == 0, promoted.stderr
    wait_for_log(supervisor, "primary", "swapped versions 1 -> 2")
    mark("promoted")
    time.sleep(PHASE_S)

    mark("rollback")
    rolled = cli(env, "model", "rollback", "primary", "--actor", "ci")
    assert rolled.returncode == 0, rolled.stderr
    wait_for_log(supervisor, "primary", "swapped versions 2 -> 1")
    mark("rolled back")
    time.sleep(PHASE_S)
    stop.set()
    sender.join()
    n = loop.sent
    ids = [f"lc-{i}" for i in range(n)]
    flush_or_raise(producer)
    assert not loop.failed

    listed = cli(env, "model", "list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^primary\s+1\s+live\s+0\.\d+\s+-\s+[0-9a-f]{16}$", listed.stdout, re.M)
    assert re.search(r"^primary\s+2\s+previous|^primary\s+2\s+-\s+", listed.stdout, re.M), \
        listed.stdout
    assert re.search(r"^primary\s+2\s+.*passed", listed.stdout, re.M), listed.stdout
    status = cli(env, "status")
    assert status.returncode == 0, status.stderr
    assert re.search(r"primary: live 1, shadow none \(rollback 1 by ci at ", status.stdout), \
        status.stdout
    assert re.search(r"canary: live 1 \(newest; no registry entry\)", status.stdout)

    entries, _ = read_registry(settings)
    entry = entries["primary"]
    assert (entry.live, entry.shadow, entry.previous) == ("1", [], [])
    assert entry.change is not None and (entry.change.action, entry.change.actor) == (
        "rollback", "ci")

    # Exactly one result per request.
    scored = TopicRecords(settings, "scored")
    wanted = set(ids)
    seen: collections.Counter[str] = collections.Counter()

    def complete(records: list) -> bool:
        for record in records[sum(seen.values()):]:
            seen[decode_scored(record.value()).id] += 1
        return wanted <= seen.keys()

    scored.read_until(complete, timeout_s=90, settle_s=3.0)
    complete(scored.records)
    scored.close()
    lost = wanted - seen.keys()
    duplicated = [rid for rid, c in seen.items() if c > 1]
    assert not lost, f"{len(lost)} requests without a result"
    assert not duplicated, f"{len(duplicated)} answered twice: {duplicated[:3]}"

    reader = TopicRecords(settings, "decisions")
    records = reader.read_until(lambda rs: len(rs) >= n, timeout_s=60)
    reader.close()
    decisions: dict[str, Decision] = {}
    for record in records:
        d = decode_decision(record.value())
        decisions.setdefault(d.id, d)
    index = {rid: i for i, rid in enumerate(ids)}

    phases = [("steady", marks["steady"], marks["shadow"]),
              ("shadow", marks["shadow"], marks["promote"]),
              ("promoted", marks["promoted"], marks["rollback"]),
              ("rolled back", marks["rolled back"], n)]
    expected = {"steady": "1", "shadow": "1", "promoted": "2", "rolled back": "1"}
    timeouts = {}
    for phase, first, end in phases:
        in_phase = [decisions[rid] for rid in ids[first:end]]
        primary = [d for d in in_phase if d.chosen == "primary"]
        versions = collections.Counter(d.version for d in primary)
        statuses = collections.Counter(d.status for d in in_phase)
        print(f"{phase}: {len(in_phase)} requests, {statuses}, primary versions {versions}")
        assert set(versions) == {expected[phase]}, (phase, versions, statuses)
        timeouts[phase] = sum(d.status == "timeout" for d in in_phase) / len(in_phase)
    # The transitions (with the requests in flight while workers swapped) have no more
    # timeouts than the steady state; 1 point of slack for the noise of a shared machine
    # (on a quiet one both are 0).
    transitions = [decisions[rid] for rid in ids[marks["shadow"]:]]
    steady_rate = timeouts["steady"]
    transition_rate = sum(d.status == "timeout" for d in transitions) / len(transitions)
    print(f"timeout rates: steady {steady_rate:.4%}, transitions {transition_rate:.4%}, "
          f"by phase {timeouts}")
    assert transition_rate <= steady_rate + 0.01, timeouts

    # Shadow answers: recorded while v2 was a shadow, never chosen.
    shadows = [(rid, c) for rid, d in decisions.items() for c in d.candidates if c.shadow]
    assert shadows, "no shadow answer was recorded"
    assert {(c.model, c.version) for _, c in shadows} == {("primary", "2")}
    assert all(index[rid] >= marks["shadow"] for rid, _ in shadows)
    in_shadow_phase = sum(1 for rid, _ in shadows
                          if marks["shadowing"] <= index[rid] < marks["promote"])
    print(f"shadow answers recorded: {len(shadows)}, {in_shadow_phase} of "
          f"{marks['promote'] - marks['shadowing']} requests of the shadow phase")
    chosen = {rid: d for rid, d in decisions.items() if any(c.shadow for c in d.candidates)}
    for rid, d in chosen.items():
        live = [c for c in d.candidates if not c.shadow and c.model == d.chosen]
        assert d.chosen is None or (live and live[0].version == d.version), d
        if index[rid] < marks["promote"]:
            assert d.version != "2", d
