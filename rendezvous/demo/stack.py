"""Which Kafka and Redis the demo and ``rendezvous up`` run on (the tests and benchmarks
lease theirs here too): the given ones (``KAFKA_BOOTSTRAP_SERVERS`` and ``REDIS_URL``),
else a running ``rendezvous local up`` of the same state directory, else what the caller's
``elsewhere`` finds (the tests: containers), else a local stack started here and stopped on
the way out."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rendezvous import local
from rendezvous.errors import RendezvousError
from rendezvous.local.kafka import kafka_answers
from rendezvous.local.processes import alive
from rendezvous.local.stack import read as read_local
from rendezvous.settings import Settings

Guard = Callable[[bool], contextlib.AbstractContextManager[Any]]
"""``guard(reraise)`` holds signals around starting (True) and stopping (False) a stack."""


class StackError(RendezvousError, RuntimeError):
    """No Kafka and Redis to run on; the message says why."""


@dataclass(frozen=True)
class Stack:
    """Kafka and Redis endpoints, and whether this lease started them (and so stops them)."""

    bootstrap_servers: str
    redis_url: str
    started: bool
    origin: str
    """Where they came from, for the user: environment, running local stack, or started."""
    local: Settings | None = None
    """The settings of the local stack (its state directory), when it is one."""
    pids: list[int] = field(default_factory=list)
    """Server pids of a stack this lease started; a broker restart adds its new pid."""

    def settings(self, settings: Settings, **update: object) -> Settings:
        """``settings`` pointed at this stack (plus ``update``)."""
        return settings.with_endpoints(self.bootstrap_servers, self.redis_url).model_copy(
            update=update)


Elsewhere = Callable[[contextlib.ExitStack], Stack | None]
"""``elsewhere(exits)``: Kafka and Redis found or started some other way (the tests:
containers, when a Docker engine answers), their teardown entered in ``exits``; None when
there are none."""


def _quiet(_text: str) -> None:
    pass


def _no_guard(_reraise: bool) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


def _acquire(settings: Settings, say: Callable[[str], None], own: bool,
             elsewhere: Elsewhere | None, exits: contextlib.ExitStack) -> Stack:
    given = settings.kafka.bootstrap_servers, settings.redis.url
    if not own and all(given):
        if not kafka_answers(given[0] or "", timeout_s=10):
            raise StackError(f"Kafka at {given[0]} (KAFKA_BOOTSTRAP_SERVERS) does not answer")
        return Stack(given[0] or "", given[1] or "", False, "environment")
    running = None if own else read_local(settings)
    if running and running.alive():
        return Stack(given[0] or running.bootstrap_servers, given[1] or running.redis_url,
                     False, "running `rendezvous local up`", settings)
    if not own and any(given):
        raise StackError("set both KAFKA_BOOTSTRAP_SERVERS and REDIS_URL, or neither "
                         "(then a local Kafka and Redis are started)")
    found = elsewhere(exits) if elsewhere is not None else None
    if found is not None:
        return found
    say("starting a local Kafka and Redis (the first run fetches the Kafka jars)...")
    endpoints = local.up(settings)
    return Stack(endpoints.bootstrap_servers, endpoints.redis_url, True, "started", settings,
                 endpoints.server_pids)


@contextlib.contextmanager
def lease(settings: Settings, say: Callable[[str], None] = _quiet, *, stop_started: bool = True,
          own: bool = False, elsewhere: Elsewhere | None = None,
          guard: Guard = _no_guard) -> Iterator[Stack]:
    """The stack to run on; with ``own``, always a local stack of ``settings.state_dir``
    started here; with ``elsewhere``, what it finds (if anything) before starting a local
    stack. With ``stop_started``, a stack this started is stopped on the way out, however
    that happens, and any of its servers still alive then is an error.

    ``guard`` holds Ctrl-C while the broker starts: ``local.up`` records its pids only
    once it answers, and an unrecorded broker could not be stopped.
    """
    stack: Stack | None = None
    with contextlib.ExitStack() as exits:
        try:
            with guard(True):
                stack = _acquire(settings, say, own, elsewhere, exits)
            yield stack
        finally:
            if stop_started and stack is not None and stack.started:
                say("stopping the local Kafka and Redis...")
                with guard(False):
                    local.down(settings)
                leftover = [p for p in stack.pids if alive(p)]
                if leftover:
                    raise StackError(f"local stack processes outlived the run: {leftover}")
