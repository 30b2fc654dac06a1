"""Issue 31, item 5, through the real broker and a running decoy: ``rendezvous archive
forget --id ID`` started while the request's records are still in the decoy's buffer
waits for the decoy to roll them, removes the rows the gateway made of the id (and its
decision), and says for each topic that still holds the request how long until its
retention removes it (read from the broker)."""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from rendezvous.archive import read_archive
from rendezvous.cli import main
from rendezvous.local.supervisor import Supervisor
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer

pytestmark = pytest.mark.integration

TOKEN = "0123456789abcdef0123456789abcdef"


def test_forget_waits_for_the_decoys_buffer_and_reports_the_topics_retention(
        settings: Settings, supervisor: Supervisor, component_env: dict[str, str],
        tmp_path: Path) -> None:
    root = tmp_path / "archive"
    # rolls every 4 s: the records below are in its memory when forget starts
    supervisor.start("decoy", ["decoy", "--archive", str(root), "--roll-seconds", "4"])
    victim = [f"victim.{TOKEN}.0", f"victim.{TOKEN}.1"]
    producer = make_producer(settings)
    for rid in [*victim, "victim-not", "other-1"]:
        event = {"id": rid, "features": [1.0, 2.0], "email": "ana@example.test"}
        producer.produce(settings.topic("input"), msgspec.json.encode(event), rid.encode())
    decision = {"id": victim[0], "status": "ok", "chosen": "primary"}
    producer.produce(settings.topic("decisions"), msgspec.json.encode(decision),
                     victim[0].encode())
    flush_or_raise(producer)
    started = time.monotonic()
    result = CliRunner().invoke(main, ["archive", "forget", "--archive", str(root),
                                       "--id", "victim", "--wait-s", "60"],
                                env={**component_env, "RENDEZVOUS_STATE_DIR": str(tmp_path)})
    took = time.monotonic() - started
    print(result.output)
    assert result.exit_code == 0, result.output
    assert "the decoy had archived it all" in result.output
    removed = [int(n) for n in re.findall(r"^removed (\d+) rows from ", result.output, re.M)]
    assert sum(removed) == 3  # two gateway rows and one decision, whatever their partitions
    left = sorted(msgspec.json.decode(v)["id"]
                  for v in read_archive(root).column("value").to_pylist())
    assert left == ["other-1", "victim-not"]  # archived (it waited), the victim's rows gone
    prefix = settings.topic_prefix
    lines = {line.split(":", 1)[0]: line for line in result.output.splitlines()
             if line.startswith("kafka ")}
    assert "still holds it (partition" in lines[f"kafka {prefix}input"]
    assert "retention removes it in 6d 23h at the earliest" in lines[f"kafka {prefix}input"]
    assert "NOT redacted" in lines[f"kafka {prefix}input"]
    assert "still holds it" in lines[f"kafka {prefix}decisions"]
    assert "holds no record from the request's time" in lines[f"kafka {prefix}scores"]
    assert f"kafka {prefix}deadletter" in lines and f"kafka {prefix}feedback" in lines
    assert took < 60
    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
