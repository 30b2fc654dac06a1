"""The monitor restarted gracefully and killed with SIGKILL: it goes on from its restored
windows and re-reads nothing (moved from tests/integration/test_monitor.py: a fault drill)."""

from __future__ import annotations

import time

import pytest

from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import encode
from rendezvous.monitor.windows import window_start
from rendezvous.settings import Settings
from tests.integration.test_monitor import (
    committed_everything,
    decisions,
    produce,
    start_monitor,
    wait_for,
    windows,
)

pytestmark = pytest.mark.integration


def test_restart_continues_windows(settings: Settings, supervisor: Supervisor) -> None:
    args = ["--window-s", "60"]
    port = start_monitor(supervisor, *args)
    ts = time.time() * 1000
    ws = window_start(ts, 60_000)

    def count() -> int:
        w = windows(port).get(ws)
        return w["decisions"]["count"] if w else 0

    batches = [decisions(200, ts, seed=s, prefix=f"b{s}-") for s in range(4)]
    produce(settings, "decisions", [(d.id, encode(d)) for d in batches[0]])
    wait_for(lambda: count() == 200, what="200 decisions counted")

    supervisor.terminate("monitor")  # SIGTERM: faust drains and stops
    port = start_monitor(supervisor, *args)
    assert count() == 200, "a restarted monitor must start from its restored windows"
    # Two batches, each committed: every commit of a running monitor moves its offsets on.
    for n, batch in ((400, batches[1]), (600, batches[2])):
        produce(settings, "decisions", [(d.id, encode(d)) for d in batch])
        wait_for(lambda n=n: count() == n, what=f"{n} decisions after a graceful restart")
        wait_for(lambda: committed_everything(settings, "decisions"), what="offsets committed")
    time.sleep(0.5)  # the changelog writes of the last tick are sent (flush_s = 0.25)
    supervisor.kill9("monitor")
    port = start_monitor(supervisor, *args)
    time.sleep(1.0)  # what it would re-read (anything uncommitted) is counted by now
    assert count() == 600, "a crashed monitor must restore its windows, and re-read nothing"
    produce(settings, "decisions", [(d.id, encode(d)) for d in batches[3]])
    wait_for(lambda: count() == 800, what="800 decisions after a crash")
