"""A fresh machine's first `local up` (the jars fetched through Maven), a warm start without
Maven, and `local down` leaving no process (moved from tests/integration/test_local_stack.py:
the slowest drill of the local stack)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rendezvous import local
from rendezvous.local.processes import alive
from rendezvous.settings import Settings
from tests.integration.test_local_stack import _broker_config, _path_without

pytestmark = pytest.mark.integration


def test_cold_then_warm_start_and_down_leaves_no_process(tmp_path: Path, monkeypatch) -> None:
    settings = Settings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                        local={"io_threads": 3})
    cold = local.up(settings)  # empty cache: fetches the jars through Maven
    try:
        assert "running" in local.status(settings)["kafka"]
        assert "running" in local.status(settings)["redis"]
        threads = _broker_config(cold.bootstrap_servers, "num.network.threads",
                                 "num.io.threads")
        assert threads == {"num.network.threads": "1", "num.io.threads": "3"}  # as set
    finally:
        local.down(settings)
    assert not alive(cold.kafka_pid) and not alive(cold.redis_pid)

    # Warm: the cached jars are used, so Maven is not even needed.
    monkeypatch.setenv("PATH", _path_without("mvn", tmp_path))
    warm = local.up(settings)
    assert warm.kafka_pid != cold.kafka_pid
    assert local.status(settings)["kafka"].startswith("running")
    stopped = local.down(settings)
    assert set(stopped) == {warm.kafka_pid, warm.redis_pid}
    assert not alive(warm.kafka_pid) and not alive(warm.redis_pid)
    assert local.status(settings) == {"kafka": "stopped", "redis": "stopped"}
