"""Which Kafka and Redis a demo or ``up`` runs on: an existing one, or a local stack it starts."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rendezvous import local
from rendezvous.demo.errors import DemoError
from rendezvous.demo.signals import deferred
from rendezvous.local.kafka import kafka_answers
from rendezvous.local.processes import alive
from rendezvous.local.stack import read as read_local
from rendezvous.settings import Settings


@dataclass(frozen=True)
class Stack:
    """Kafka and Redis endpoints, and whether this run started them (and so stops them)."""

    bootstrap_servers: str
    redis_url: str
    started: bool
    origin: str
    """Where they came from, for the user: environment, running local stack, or started."""

    def settings(self, settings: Settings, **update: object) -> Settings:
        """``settings`` pointed at this stack (plus ``update``)."""
        return settings.model_copy(update={"bootstrap_servers": self.bootstrap_servers,
                                           "redis_url": self.redis_url, **update})


def acquire(settings: Settings, say: Callable[[str], None]) -> Stack:
    """Use KAFKA_BOOTSTRAP_SERVERS + REDIS_URL, else a running ``rendezvous local up``,
    else start the local stack."""
    if settings.bootstrap_servers and settings.redis_url:
        if not kafka_answers(settings.bootstrap_servers, timeout_s=10):
            raise DemoError(f"Kafka at {settings.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS) "
                            "does not answer")
        return Stack(settings.bootstrap_servers, settings.redis_url, False, "environment")
    running = read_local(settings)
    if running and alive(running.kafka_pid) and alive(running.redis_pid):
        bootstrap = settings.bootstrap_servers or running.bootstrap_servers
        redis_url = settings.redis_url or running.redis_url
        return Stack(bootstrap, redis_url, False, "running `rendezvous local up`")
    if settings.bootstrap_servers or settings.redis_url:
        raise DemoError("set both KAFKA_BOOTSTRAP_SERVERS and REDIS_URL, or neither "
                        "(then a local Kafka and Redis are started)")
    say("starting a local Kafka and Redis (the first run fetches the Kafka jars)...")
    endpoints = local.up(settings)
    return Stack(endpoints.bootstrap_servers, endpoints.redis_url, True, "started")


@contextlib.contextmanager
def lease(settings: Settings, say: Callable[[str], None],
          stop_started: bool = True) -> Iterator[Stack]:
    """The stack to run on (see :func:`acquire`); with ``stop_started``, a local stack this
    started is stopped on the way out, however that happens.

    Ctrl-C while the broker starts is held until it is up: ``local.up`` records its pids
    only then, and an unrecorded broker could not be stopped.
    """
    stack: Stack | None = None
    try:
        with deferred(say):
            stack = acquire(settings, say)
        yield stack
    finally:
        if stop_started and stack is not None and stack.started:
            say("stopping the local Kafka and Redis...")
            with deferred(say, reraise=False):
                local.down(settings)
