"""The embedded default: real broker and Redis start, answer, and stop without leftovers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from rendezvous.local.kafka import ensure_jars
from rendezvous.local.processes import alive, stop
from rendezvous.local.redis import packaged_server, redis_answers, redis_server, start_redis

pytestmark = pytest.mark.integration


def _broker_config(bootstrap: str, *names: str) -> dict[str, str]:
    """What the running broker reports for ``names``."""
    resource = ConfigResource(ResourceType.BROKER, "1")
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the answer is in
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: entries[name].value for name in names}


def _path_without(program: str, tmp_path: Path) -> str:
    """A PATH with links to everything needed except ``program``."""
    shim = tmp_path / f"path-without-{program}"
    shim.mkdir()
    for tool in ("java", "mvn"):
        found = shutil.which(tool)
        if tool != program and found:
            (shim / tool).symlink_to(found)
    return str(shim)


def test_redis_without_redis_server_on_path_runs_the_packaged_valkey(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", _path_without("redis-server", tmp_path))
    assert Path(redis_server()) == packaged_server()
    pid, url = start_redis(tmp_path)
    try:
        assert redis_answers(url)
    finally:
        stop(pid)
    assert not alive(pid)


@pytest.mark.parametrize(("missing", "fix"), [("java", "openjdk"), ("mvn", "install Maven")])
def test_missing_program_gives_one_line_naming_the_fix(tmp_path: Path, missing: str,
                                                       fix: str) -> None:
    env = {**os.environ, "PATH": _path_without(missing, tmp_path),
           "RENDEZVOUS_STATE_DIR": str(tmp_path / "state")}
    cache = tmp_path / "cache"  # empty: `mvn` is needed to fill it
    env["RENDEZVOUS_CACHE_DIR"] = str(cache)
    if missing == "java":  # jars cached, so the only thing missing is java
        ensure_jars(cache)
    result = subprocess.run([sys.executable, "-m", "rendezvous", "local", "up"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    assert f"`{missing}` not found" in errors[0] and fix in errors[0]
    assert "Traceback" not in result.stderr
