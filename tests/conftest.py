"""Shared fixtures: one real Kafka broker and Redis per session, unique topics per test.

Where they come from, in order: ``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL``
when set; testcontainers when a Docker engine answers; else ``rendezvous
local`` (real broker from Maven Central jars; redis-server, or the valkey-server
the package installs). If none can start, the run fails and says why: integration
tests never skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rendezvous import local
from rendezvous.local.pipeline import component_env as pipeline_env
from rendezvous.local.processes import alive
from rendezvous.local.supervisor import Supervisor
from rendezvous.settings import Settings
from rendezvous.transport.topics import apply_topics


def _docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _containers() -> Iterator[tuple[str, str]]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka, RedisContainer() as redis:
        host = redis.get_container_host_ip()
        yield kafka.get_bootstrap_server(), f"redis://{host}:{redis.get_exposed_port(6379)}/0"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(bootstrap servers, Redis URL) of a real broker and Redis for the whole session."""
    bootstrap, redis_url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("REDIS_URL")
    if bootstrap and redis_url:
        yield bootstrap, redis_url
        return
    if _docker_engine_answers():
        with _containers() as endpoints:
            yield endpoints
        return
    state = tmp_path_factory.mktemp("local-stack")
    settings = Settings(state_dir=state, **_cache_override())
    try:
        endpoints = local.up(settings)
    except Exception as exc:
        pytest.fail(f"could not start the local Kafka/Redis stack: {exc}", pytrace=False)
    try:
        yield endpoints.bootstrap_servers, endpoints.redis_url
    finally:
        from tests.integration.streams import close_producers

        close_producers()
        local.down(settings)
        leftover = [p for p in (endpoints.kafka_pid, endpoints.redis_pid) if alive(p)]
        assert not leftover, f"local stack processes outlived the session: {leftover}"


def _cache_override() -> dict[str, Path]:
    cache = os.environ.get("RENDEZVOUS_CACHE_DIR")
    return {"cache_dir": Path(cache)} if cache else {}


@pytest.fixture
def prefix() -> str:
    """A topic/group prefix of this test alone."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def settings(stack: tuple[str, str], prefix: str) -> Settings:
    """Settings on the session's broker and Redis, with this test's own topics (created)."""
    bootstrap, redis_url = stack
    s = Settings(
        bootstrap_servers=bootstrap,
        redis_url=redis_url,
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
