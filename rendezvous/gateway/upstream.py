"""The gateway's Kafka side: produce input events, know whether Kafka is up, and
follow the live policy's deadline.

One background thread serves the producer's callbacks, checks the broker every
``CHECK_S`` and follows the control topic, so the request path only calls
``produce`` (microseconds) and reads two attributes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException

from rendezvous.gateway.errors import Unavailable
from rendezvous.messages import InputEvent, Policy, encode
from rendezvous.service.control import PolicyWatcher
from rendezvous.settings import Settings
from rendezvous.transport.clients import make_producer

log = logging.getLogger(__name__)

CHECK_S = 2.0
"""How often the broker is asked for the input topic's metadata."""


class Upstream:
    """Produces input events; ``kafka_up`` and ``deadline_ms`` are kept current by a thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._topic = settings.topic("input")
        # linger 0: a lone HTTP request should not wait for company; under load
        # librdkafka batches whatever queued while a request was in flight anyway.
        # Delivery reports only for failures: a row that never reaches Kafka is answered
        # `timeout` by the deadline anyway, and a report per row would make the polling
        # thread take the GIL from the event loop a thousand times a second.
        self._producer = make_producer(settings, **{"linger.ms": 0, "error_cb": self._on_error,
                                                    "delivery.report.only.error": True})
        self.kafka_up = False
        self.deadline_ms = settings.default_deadline_ms
        """The live policy's deadline (the settings' default until the control topic says)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-kafka", daemon=True)

    def start(self) -> None:
        """Start the thread (it asks the broker at once); returns without waiting."""
        self._thread.start()

    def send(self, events: Sequence[InputEvent]) -> None:
        """Queue every event for the input topic, or raise :class:`Unavailable`."""
        if not self.kafka_up:
            raise Unavailable("Kafka is not reachable")
        try:
            for event in events:
                self._producer.produce(self._topic, encode(event), event.id.encode())
        except BufferError:
            # Back-pressure: waiting here would stall every request of the event loop.
            raise Unavailable("the gateway's Kafka queue is full; retry later") from None
        except KafkaException as exc:
            raise Unavailable(f"Kafka refused the request: {exc}") from None

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._producer.flush(5)

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN or error.fatal():
            if self.kafka_up:
                log.warning("Kafka is down: %s", error)
            self.kafka_up = False

    def _check(self) -> None:
        try:
            topics = self._producer.list_topics(self._topic, timeout=1.0).topics
            found = topics.get(self._topic)
            up = bool(found and found.partitions and found.error is None)
        except KafkaException:
            up = False
        if up != self.kafka_up:
            log.info("Kafka %s", "reachable" if up else "unreachable")
        self.kafka_up = up

    def _run(self) -> None:
        watcher: PolicyWatcher | None = None
        next_check = time.monotonic()
        while not self._stop.is_set():
            self._producer.poll(0.05)
            if time.monotonic() >= next_check:
                self._check()
                next_check = time.monotonic() + CHECK_S
            if not self.kafka_up:
                continue
            try:
                if watcher is None:
                    watcher = PolicyWatcher(self._settings)
                    self._apply(watcher.read_current(timeout_s=5.0))
                else:
                    self._apply(watcher.poll(0.0))
            except KafkaException as exc:
                log.warning("cannot follow the control topic yet: %s", exc)
                _close(watcher)
                watcher = None
        _close(watcher)

    def _apply(self, policy: Policy | None) -> None:
        if policy is not None and policy.deadline_ms != self.deadline_ms:
            log.info("live policy deadline: %g ms", policy.deadline_ms)
            self.deadline_ms = policy.deadline_ms


def _close(watcher: PolicyWatcher | None) -> None:
    if watcher is not None:
        watcher.close()
