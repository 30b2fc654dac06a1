"""Kafka and Redis in containers (testcontainers), for the session's stack when a Docker
engine answers; the package never needs Docker."""

from __future__ import annotations

import contextlib

from rendezvous.demo.stack import Stack

KAFKA_IMAGE = "apache/kafka:4.1.1"


def _docker_engine_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def containers(exits: contextlib.ExitStack) -> Stack | None:
    """A Kafka and a Redis container (stopped by ``exits``), or None without Docker: the
    ``elsewhere`` of :func:`rendezvous.demo.stack.lease`."""
    if not _docker_engine_answers():
        return None
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    kafka = exits.enter_context(KafkaContainer(KAFKA_IMAGE).with_kraft())
    redis = exits.enter_context(RedisContainer())
    host = redis.get_container_host_ip()
    return Stack(kafka.get_bootstrap_server(), f"redis://{host}:{redis.get_exposed_port(6379)}/0",
                 False, "containers")
