"""Shared fixtures: one real Kafka broker and Redis per session, unique topics per test.

Where they come from, in order: ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL``
when set; testcontainers when a Docker engine answers; else ``rendezvous
local`` (real broker from Maven Central jars; redis-server, or the valkey-server
the package installs). If none can start, the run fails and says why: integration
tests never skip.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rendezvous.demo.stack import lease
from rendezvous.local.pipeline import component_env as pipeline_env
from rendezvous.local.processes import alive
from rendezvous.local.supervisor import Supervisor
from rendezvous.settings import KafkaSettings, RedisSettings, Settings
from rendezvous.transport.topics import apply_topics
from tests.containers import containers
from tests.streams import close_producers


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(bootstrap servers, Redis URL) of a real broker and Redis for the whole session."""
    state = tmp_path_factory.mktemp("local-stack")
    with contextlib.ExitStack() as leases:
        try:
            found = leases.enter_context(lease(Settings(state_dir=state), elsewhere=containers))
        except Exception as exc:
            pytest.fail(f"could not start the local Kafka/Redis stack: {exc}", pytrace=False)
        leases.callback(close_producers)  # before the broker stops, so none keeps retrying
        yield found.bootstrap_servers, found.redis_url


@pytest.fixture
def prefix() -> str:
    """A topic/group prefix of this test alone."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def settings(stack: tuple[str, str], prefix: str) -> Settings:
    """Settings on the session's broker and Redis, with this test's own topics (created)."""
    bootstrap, redis_url = stack
    s = Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap),
        redis=RedisSettings(url=redis_url),
        topic_prefix=prefix,  # topics.yaml and models: the packaged defaults
    )
    apply_topics(s)
    return s


@pytest.fixture
def component_env(settings: Settings) -> dict[str, str]:
    """Environment for component subprocesses: the same broker, Redis and topics as ``settings``."""
    return pipeline_env(settings)


@pytest.fixture
def supervisor(tmp_path: Path, component_env: dict[str, str]) -> Iterator[Supervisor]:
    """Starts component processes for a test; every one is stopped by pid afterwards."""
    sup = Supervisor(tmp_path / "logs", component_env)
    try:
        yield sup
    finally:
        sup.stop_all()
        assert not [p for p in sup.pids() if alive(p)]
