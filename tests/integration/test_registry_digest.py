"""Issue 31, item 10 through the real broker: the registry records the sha256 of each
version a change is about; once ``models/primary/2`` was promoted, replacing its
``model.onnx`` (manifest and all) is caught: `model promote` of the changed version is
refused, and a worker whose copy of version 2 is not the registry's refuses to load it,
says so, and keeps scoring version 1 (a worker started on it stops at start)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rendezvous.local.processes import alive
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import BacktestVerdict
from rendezvous.model import sample_events
from rendezvous.registry import publish_verdict, read_registry
from rendezvous.settings import Settings
from tests.integration.test_worker import collect, send
from tests.model_versions import copy_version
from tests.unit.registry.test_registry_digest import sha, swap

pytestmark = pytest.mark.integration


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rendezvous", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def wait_for_log(log: Path, text: str, timeout_s: float = 60.0) -> None:
    give_up = time.monotonic() + timeout_s
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < give_up, \
            f"never logged {text!r}:\n{log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.1)


@pytest.mark.timeout(300)
def test_swapped_bytes_after_promote_are_refused(settings: Settings, tmp_path: Path,
                                                 component_env: dict[str, str]) -> None:
    bundled = Path(settings.models_dir) / "primary" / "1"
    served = tmp_path / "worker-models"  # the worker host's copy of the models
    shutil.copytree(bundled, served / "primary" / "1")
    operator = tmp_path / "operator-models"  # the operator's (the registry's truth)
    shutil.copytree(bundled, operator / "primary" / "1")
    env = {**component_env, "RENDEZVOUS_MODELS_DIR": str(served)}
    supervisor = Supervisor(tmp_path / "logs", env)
    run = {**os.environ, **env}
    try:
        worker = supervisor.start("primary", ["worker", "--model", "primary"])
        for root in (served, operator):
            copy_version(root / "primary" / "1", root, "2")
        genuine = sha(served / "primary" / "2" / "model.onnx")
        promoted = cli(run, "model", "promote", "primary", "2", "--force", "--actor", "ci")
        assert promoted.returncode == 0, promoted.stderr
        wait_for_log(worker.log, "swapped versions 1 -> 2")
        rolled = cli(run, "model", "rollback", "primary", "--actor", "ci")
        assert rolled.returncode == 0, rolled.stderr
        wait_for_log(worker.log, "swapped versions 2 -> 1")
        entry = read_registry(settings)[0]["primary"]
        assert entry.sha256["2"] == genuine  # named no more, still recorded
        assert entry.change is not None and entry.change.sha256 == entry.sha256["1"]

        swapped = swap(served / "primary" / "2")  # after its promote: other bytes
        # The operator promoting the swapped copy again is refused, naming both digests.
        again = cli(run, "model", "promote", "primary", "2", "--force", "--actor", "ci")
        assert again.returncode == 1, again.stdout + again.stderr
        assert swapped[:16] in again.stderr and genuine[:16] in again.stderr, again.stderr

        # Promoted from the operator's genuine copy: the worker's copy is not what the
        # registry recorded; it refuses, logs why, and stays on version 1.
        ok = cli({**run, "RENDEZVOUS_MODELS_DIR": str(operator)}, "model", "promote",
                 "primary", "2", "--force", "--actor", "ci")
        assert ok.returncode == 0, ok.stderr
        wait_for_log(worker.log, f"refusing primary 2: {served / 'primary' / '2'}")
        text = worker.log.read_text(errors="replace")
        assert f"the registry recorded {genuine[:16]}" in text
        assert "keeping ['1']" in text and "swapped versions 1 -> 2\n" not in \
            text.split("swapped versions 2 -> 1")[-1]
        events = [{**e, "id": f"d-{uuid.uuid4().hex[:8]}-{i}"}
                  for i, e in enumerate(sample_events(8, seed=10))]
        send(settings, events)
        scores = collect(settings, {e["id"] for e in events})
        assert {s.version for s, _ in scores if s.id in {e["id"] for e in events}} == {"1"}

        # A worker started now (live: 2, its copy swapped) does not serve it: it stops.
        fresh = supervisor.start("primary-b", ["worker", "--model", "primary",
                                               "--instance-id", "b"], wait=False)
        give_up = time.monotonic() + 60
        while alive(fresh.pid):
            assert time.monotonic() < give_up, fresh.log.read_text()[-3000:]
            time.sleep(0.2)
        assert "refusing primary 2" in fresh.log.read_text(errors="replace")
    finally:
        supervisor.stop_all()


def test_swapped_bytes_between_backtest_and_promote_are_refused(
        settings: Settings, tmp_path: Path, component_env: dict[str, str]) -> None:
    """The verdict names the bytes it scored: a version whose files were replaced after its
    backtest passed is not promoted on that verdict (it was, before)."""
    models = tmp_path / "models"
    shutil.copytree(Path(settings.models_dir) / "primary" / "1", models / "primary" / "1")
    copy_version(models / "primary" / "1", models, "2")
    backtested = sha(models / "primary" / "2" / "model.onnx")
    publish_verdict(settings, BacktestVerdict("primary", "2", True, "primary:1",
                                              sha256=backtested))
    swapped = swap(models / "primary" / "2")
    run = {**os.environ, **component_env, "RENDEZVOUS_MODELS_DIR": str(models)}
    refused = cli(run, "model", "promote", "primary", "2", "--actor", "ci")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"scored model.onnx sha256 {backtested[:12]}, the version's manifest now says " \
           f"{swapped[:12]}" in refused.stderr, refused.stderr
    assert "primary" not in read_registry(settings)[0]  # nothing published

    swap_back = models / "primary" / "2"
    shutil.rmtree(swap_back)
    copy_version(models / "primary" / "1", models, "2")  # the bytes that were backtested
    promoted = cli(run, "model", "promote", "primary", "2", "--actor", "ci")
    assert promoted.returncode == 0, promoted.stderr
    assert read_registry(settings)[0]["primary"].live == "2"
