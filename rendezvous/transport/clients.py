"""Kafka clients built from settings, with latency knobs chosen on purpose.

Every client is built here, so the hot path's knobs are set once, from settings
(``[kafka]`` ``linger_ms``, ``fetch_wait_max_ms``, ``fetch_min_bytes``; measured in
docs/benchmarks.md): librdkafka's ``linger.ms`` defaults to 5 ms, paid at every
hop (input -> scores -> scored); a ``fetch.min.bytes`` of 1 makes every record
end a fetch, which on two cores cost more CPU than it saved in latency.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AclOperation, AdminClient

from rendezvous.settings import Settings
from rendezvous.transport.bad_records import offset_of, partition_of, topic_of
from rendezvous.transport.connect import kafka_config
from rendezvous.transport.errors import TransportError

log = logging.getLogger(__name__)

PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "batch.num.messages": 10000,
    "compression.type": "none",
}

CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 10000,
    "heartbeat.interval.ms": 1000,
}

READER_DEFAULTS: dict[str, Any] = {
    "enable.partition.eof": True,
    "isolation.level": "read_committed",
}


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """An idempotent producer (acks=all) for this deployment."""
    conf = kafka_config(settings, **{**PRODUCER_DEFAULTS, "client.id": _client_id(),
                                    "linger.ms": settings.kafka.linger_ms})
    conf.update(overrides)
    return Producer(conf)


class _Consumer(Consumer):
    """A consumer that knows the principal it logs in as (to name it when refused)."""

    principal: str = "this client"
    group: str = ""


def make_consumer(settings: Settings, group: str, **overrides: Any) -> Consumer:
    """A consumer in ``group`` that commits only when told to."""
    conf = kafka_config(settings, **{**CONSUMER_DEFAULTS, "group.id": group,
                                    "client.id": _client_id(),
                                    "fetch.wait.max.ms": settings.kafka.fetch_wait_max_ms,
                                    "fetch.min.bytes": settings.kafka.fetch_min_bytes})
    conf.update(overrides)
    consumer = _Consumer(conf)
    consumer.principal, consumer.group = principal_of(settings), group
    return consumer


def make_reader(settings: Settings, name: str, group: str | None = None,
                **overrides: Any) -> Consumer:
    """A consumer for reading partitions assigned by hand, end-of-partition events on,
    read_committed; in ``group`` (for its committed offsets) or a group of its own."""
    group = group or f"{settings.group(name)}-{uuid.uuid4().hex[:8]}"
    return make_consumer(settings, group, **{**READER_DEFAULTS, **overrides})


def produce(producer: Producer, topic: str, value: bytes | None, key: str | bytes | None = None,
            *, wait_s: float = 0.05, **options: Any) -> None:
    """``producer.produce``; while the local queue is full (back-pressure), serve
    delivery reports for up to ``wait_s`` and try again."""
    while True:
        try:
            producer.produce(topic, value, key, **options)
            return
        except BufferError:
            producer.poll(wait_s)


def _client_id() -> str:
    return f"rendezvous-{socket.gethostname()}"


class AccessDenied(TransportError, PermissionError):
    """The broker refuses this component's principal a topic or group it needs: fatal at
    start (the message names the principal, the resource and the operation)."""


AUTHORIZATION_CODES = frozenset({
    KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED})


def principal_of(settings: Settings) -> str:
    """The Kafka principal these settings log in as, in the broker's words."""
    if settings.kafka.security_protocol.upper().startswith("SASL") and settings.kafka.sasl_username:
        return f"User:{settings.kafka.sasl_username}"
    return f"User:ANONYMOUS ({settings.kafka.security_protocol}, no SASL user)"


def check_access(settings: Settings, *, reads: Iterable[str] = (),
                 writes: Iterable[str] = (), what: str = "this component",
                 timeout_s: float = 30.0) -> None:
    """Raise :class:`AccessDenied` naming the principal and the topic when the broker would
    not let these settings READ every topic of ``reads`` and WRITE every one of ``writes``
    (asked once, at start: a refusal later would only show as records that never come).

    Other failures (no broker, a topic missing) are left to the component's own clients,
    which report them as before; a broker without an authorizer allows everything."""
    needed: dict[str, set[AclOperation]] = {}
    for topic in reads:
        needed.setdefault(topic, set()).add(AclOperation.READ)
    for topic in writes:
        needed.setdefault(topic, set()).add(AclOperation.WRITE)
    if not needed:
        return
    admin = AdminClient(kafka_config(settings))
    futures = admin.describe_topics(TopicCollection(sorted(needed)),
                                    include_authorized_operations=True,
                                    request_timeout=timeout_s)
    who = principal_of(settings)
    for topic, future in futures.items():
        try:
            found = future.result(timeout_s)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() in AUTHORIZATION_CODES:
                ops = "/".join(sorted(op.name for op in needed[topic]))
                raise AccessDenied(
                    f"{who} may not {ops} topic {topic}, which {what} needs (the broker "
                    "refuses even to describe it): grant it, or start this component with "
                    "its own credentials") from None
            log.debug("cannot check access to %s: %s", topic, exc)
            continue
        allowed = set(found.authorized_operations or ())
        if not allowed or AclOperation.ALL in allowed:
            continue
        missing = needed[topic] - allowed
        if missing:
            ops = "/".join(sorted(op.name for op in missing))
            raise AccessDenied(f"{who} may not {ops} topic {topic}, which {what} needs: "
                               "grant it, or start this component with its own credentials")


def refused(consumer: Consumer, error: KafkaError, topic: str | None) -> AccessDenied:
    """The :class:`AccessDenied` of a consumer's authorization error."""
    who = getattr(consumer, "principal", "this client")
    if error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
        where = f"consumer group {getattr(consumer, 'group', '') or '(unknown)'}"
    else:
        where = f"topic {topic}" if topic else "a topic it needs"
    return AccessDenied(f"{who} was refused {where}: {error.str()}; grant it, or start "
                        "this component with its own credentials")


def is_fatal(error: KafkaError) -> bool:
    """Whether a consumer's error leaves the client unusable (exit, and let the supervisor
    restart): ``_FATAL`` is how a consumer reports one (e.g. a static member fenced)."""
    return bool(error.fatal()) or error.code() == KafkaError._FATAL


def poll_batch(consumer: Consumer, max_size: int, max_wait_s: float) -> list[Message]:
    """The records that have arrived, up to ``max_size``, waiting at most ``max_wait_s``
    for the first one; transient errors are logged and dropped.

    ``consume(n, timeout)`` waits the whole timeout for n records, which adds
    that wait to every hop at low rates; here a batch is whatever is already
    fetched once the first record is in, so batches grow with load by themselves.
    A fatal client error raises :class:`KafkaException`; an authorization error (a topic
    or group this principal may not use) raises :class:`AccessDenied` naming both: a
    component that cannot read what it needs must stop, not wait for records forever.
    """
    first = consumer.poll(max_wait_s)
    if first is None:
        return []
    records = [first, *consumer.consume(num_messages=max_size - 1, timeout=0)]
    good = []
    for record in records:
        error = record.error()
        if error is None:
            good.append(record)
        elif error.code() == KafkaError._PARTITION_EOF:
            continue
        elif error.code() in AUTHORIZATION_CODES:
            raise refused(consumer, error, record.topic())
        elif is_fatal(error):
            raise KafkaException(error)
        else:
            log.warning("consumer error: %s", error)
    return good


def next_offsets(records: Iterable[Message]) -> list[TopicPartition]:
    """The offsets to commit after ``records``: per partition, the highest + 1."""
    highest: dict[tuple[str, int], int] = {}
    for record in records:
        key = (topic_of(record), partition_of(record))
        offset = offset_of(record)
        if offset > highest.get(key, -1):
            highest[key] = offset
    return [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]


def flush_or_raise(producer: Producer, timeout_s: float = 30.0) -> None:
    """Wait until every produced record is acknowledged, or raise."""
    left = producer.flush(timeout_s)
    if left:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT,
                                        f"{left} records not acknowledged in {timeout_s} s"))


class Stopper:
    """Turns SIGTERM/SIGINT into a flag a poll loop checks, so it drains and exits cleanly."""

    def __init__(self, install: bool = True) -> None:
        self._event = threading.Event()
        if install and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._handle)
            signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        log.info("received %s, draining", signal.Signals(signum).name)
        self._event.set()

    def stop(self) -> None:
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()
