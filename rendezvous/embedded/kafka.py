"""An embedded rendezvous linked to a Kafka deployment: its decisions published, the live
policy followed. Both optional, both off the latency path.

**Publishing** puts each decision on the deployment's ``decisions`` topic, which the monitor
and the decoy read and serve only writes, so they see embedded traffic while the hot path
(workers and serve read ``input`` and ``scores``) never does: nothing goes onto ``input``,
where it would be scored and decided a second time. Each record carries the header
``rendezvous.source: embedded``. A decision is queued (never waiting; when full, dropped and
counted) and produced by the queue's thread, fire and forget: a failed delivery is counted.

**Following** reads the compacted ``control`` topic as serve does (``PolicyWatcher``): the
policy in force when ``Embedded`` starts, then each new one, applied to calls made after it.
A policy that names a model this ``Embedded`` does not run is logged and skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec

from rendezvous.embedded.errors import EmbeddedError
from rendezvous.embedded.offpath import OffPath
from rendezvous.messages import Decision, Policy, encode
from rendezvous.settings import KafkaSettings, Settings

log = logging.getLogger(__name__)

SOURCE_HEADER = ("rendezvous.source", b"embedded")
"""On every record an embedded rendezvous publishes."""
FLUSH_S = 5.0
"""How long ``close()`` waits for the last decisions to be delivered."""
START_S = 15.0
"""How long a follower's start is retried while the broker says it is not ready yet (a
topic created a moment ago has no leader at once)."""

T = TypeVar("T")


def retrying(make: Callable[[], T], within_s: float = START_S) -> T:
    """``make()``, tried again while it fails because a partition has no leader yet (or
    with an error Kafka calls retriable)."""
    from confluent_kafka import KafkaError, KafkaException

    not_yet = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
               KafkaError.UNKNOWN_TOPIC_OR_PART}
    give_up = time.monotonic() + within_s
    while True:
        try:
            return make()
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            waitable = error is not None and (error.retriable() or error.code() in not_yet)
            if not waitable or time.monotonic() > give_up:
                raise
            log.info("embedded: the broker is not ready (%s); trying again", error)
            time.sleep(0.2)


def to_settings(kafka: Settings | str) -> Settings:
    """``kafka`` as settings: a bootstrap servers string takes everything else from the
    environment (``RENDEZVOUS_*``: topic prefix, security), as every component does."""
    if isinstance(kafka, Settings):
        return kafka
    return Settings(kafka=KafkaSettings(bootstrap_servers=kafka))


class Publisher:
    """Decisions to the ``decisions`` topic, from a thread of its own."""

    def __init__(self, settings: Settings, capacity: int) -> None:
        from rendezvous.transport.clients import make_producer

        self._topic = settings.topic("decisions")
        self._producer = make_producer(settings)
        self.published = 0
        """Decisions the broker acknowledged."""
        self.failed = 0
        """Decisions the broker did not take (or the producer's queue was full)."""
        self._queue: OffPath[tuple[str, Decision]] = OffPath(
            "rendezvous-embedded-publish", capacity, self._produce, self._serve_reports)

    @property
    def dropped(self) -> int:
        """Decisions not published: the queue was full."""
        return self._queue.dropped

    def decisions(self, ids: Sequence[str], decisions: Sequence[Decision | None]) -> None:
        """Queue a call's decisions (never blocks)."""
        offer = self._queue.offer
        for rid, decision in zip(ids, decisions, strict=True):
            if decision is not None:
                offer((rid, decision))

    def close(self) -> None:
        """Publish what is queued, wait up to ``FLUSH_S`` for it to be delivered, stop."""
        self._queue.close()

    def _produce(self, items: list[tuple[str, Decision]]) -> None:
        producer, topic = self._producer, self._topic
        for rid, decision in items:
            value = encode(msgspec.structs.replace(decision, id=rid))
            try:
                producer.produce(topic, value, rid, headers=[SOURCE_HEADER],
                                 on_delivery=self._delivered)
            except BufferError:
                self.failed += 1
            producer.poll(0)

    def _serve_reports(self, stopping: bool) -> None:
        if stopping:
            left = self._producer.flush(FLUSH_S)
            if left:
                self.failed += left
                log.warning("embedded: %d decisions not delivered to %s in %g s", left,
                            self._topic, FLUSH_S)
        else:
            self._producer.poll(0)

    def _delivered(self, error: Any, _record: Any) -> None:
        if error is None:
            self.published += 1
        else:
            self.failed += 1


class PolicyFollower:
    """The control topic's policy, applied by ``apply`` as it changes."""

    def __init__(self, settings: Settings, apply: Callable[[Policy], None],
                 timeout_s: float = 10.0) -> None:
        from rendezvous.service.control import PolicyWatcher

        self._apply = apply
        self._watcher = PolicyWatcher(settings)
        self._stop = threading.Event()
        current = self._watcher.read_current(timeout_s)
        if current is not None:
            self._try(current)
        self._thread = threading.Thread(target=self._run, name="rendezvous-embedded-policy",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._watcher.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                policy = self._watcher.poll(0.5)
            except Exception:  # a broker hiccup must not end the following
                log.exception("embedded: reading the control topic failed; trying again")
                self._stop.wait(1.0)
                continue
            if policy is not None:
                self._try(policy)

    def _try(self, policy: Policy) -> None:
        try:
            self._apply(policy)
        except EmbeddedError as exc:
            log.warning("embedded: keeping the policy in force, not the control topic's: %s",
                        exc)
        else:
            log.info("embedded: policy from the control topic: prefer %s, deadline %g ms",
                     policy.prefer, policy.deadline_ms)
