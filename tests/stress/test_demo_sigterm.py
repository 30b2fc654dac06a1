"""The demo stopped with SIGTERM in the middle of its load leaves no process behind (moved
from tests/integration/test_demo.py: a fault drill)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rendezvous.settings import Settings
from tests.integration.test_demo import (
    DEMO_COMPONENTS,
    Lines,
    assert_none_alive,
    command_env,
    started_pids,
)

pytestmark = pytest.mark.integration


@pytest.mark.timeout(150)
def test_demo_interrupted_by_sigterm_mid_load_leaves_no_process(
        settings: Settings, tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rendezvous", "demo", "--events", "100000", "--rate", "100"],
        env=command_env(settings, state), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        out, err = Lines(proc.stdout), Lines(proc.stderr)
        err.wait_for(r"^warming up: 1,000 events", 120)  # mid-load: the warm-up's
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status == 128 + signal.SIGTERM, out.text + err.text
    assert "interrupted by SIGTERM" in err.text
    assert_none_alive(started_pids(state, "demo"), out.text + err.text, DEMO_COMPONENTS)
