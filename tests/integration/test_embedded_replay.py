"""An archive written by ``rendezvous.Embedded`` replayed by ``rendezvous replay`` onto the
real broker: every embedded input comes back as the input event it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from rendezvous.embedded import Embedded
from rendezvous.messages import InputEvent, decode_input
from rendezvous.model import load_dataset
from rendezvous.settings import Settings
from tests.integration.test_replay import read_topic, rendezvous

pytestmark = pytest.mark.integration

CALLS = 100


def test_replay_reads_an_embedded_archive(settings: Settings, component_env: dict[str, str],
                                          tmp_path: Path) -> None:
    root = tmp_path / "archive"
    rows = load_dataset().X
    with Embedded(archive=root, archive_roll_s=0.5) as embedded:
        for i in range(CALLS):
            embedded.score([float(v) for v in rows[i]], id=f"e{i}", deadline_ms=500)
    stats = embedded.stats()
    assert (stats.archived, stats.archive_dropped) == (2 * CALLS, 0)

    done = rendezvous(component_env, "replay", "--archive", str(root), "--max", "--no-progress")
    assert done.returncode == 0, done.stderr
    target = settings.topic("replay")
    assert f"replayed {CALLS:,} records to {target}" in done.stdout
    replayed = [value for records in read_topic(settings, target, CALLS).values()
                for _key, value, _headers in records]
    events = [decode_input(value) for value in replayed]
    assert all(isinstance(e, InputEvent) for e in events)
    by_id = {e.id: e for e in events if isinstance(e, InputEvent)}
    assert sorted(by_id) == sorted(f"e{i}" for i in range(CALLS))
    assert by_id["e3"].features == [float(v) for v in rows[3]]
