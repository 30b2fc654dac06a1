"""Who changed what on the control topic, and when.

Every change published to the compacted ``control`` topic carries ``actor`` (the
``--actor`` given, else the OS user), ``principal`` (the authenticated Kafka user,
``User:<name>``, when there is one) and ``at_ms``. The live record's key is
overwritten by each change, so compaction would keep only the last one: each change
is also written under a key of its own, ``audit/<kind>/<at_ms>-<random>``, which
compaction keeps. ``rendezvous policy history`` prints every control record that
says who and when, whatever its kind (policies, model-registry records, ...).
"""

from __future__ import annotations

import getpass
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from confluent_kafka import KafkaError

from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_producer
from rendezvous.transport.errors import TransportError
from rendezvous.transport.reader import TopicReader

AUDIT_PREFIX = b"audit/"
WHO = ("actor", "who", "by")
"""Field names that say who made a control record (the first present wins)."""
WHEN = ("at_ms", "when_ms", "ts")
"""Field names that say when, epoch ms."""

Stamped = TypeVar("Stamped", bound=msgspec.Struct)


def principal(settings: Settings) -> str | None:
    """The Kafka principal these settings authenticate as, if any."""
    if settings.kafka.security_protocol.startswith("SASL") and settings.kafka.sasl_username:
        return f"User:{settings.kafka.sasl_username}"
    return None


def os_user() -> str:
    """Who runs this command (the default actor of a change)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container with a random uid)
        return os.environ.get("USER") or f"uid {os.getuid()}"


def publish_audited(settings: Settings, key: bytes, value: bytes, kind: str,
                    at_ms: float | None, what: str) -> None:
    """Write ``value`` to the control topic under ``key`` and under an audit key of its own
    (compaction keeps every change); raises if the broker refuses either."""
    producer = make_producer(settings)
    refused: list[str] = []

    def delivered(error: KafkaError | None, _record: object) -> None:
        if error is not None:
            refused.append(error.str())

    for each in (key, audit_key(kind, at_ms)):
        producer.produce(settings.topic("control"), value, each, on_delivery=delivered)
    flush_or_raise(producer)
    if refused:  # e.g. a user without the right to write the control topic
        raise TransportError(f"{what} was not published: {refused[0]}")


def stamp(record: Stamped, settings: Settings, actor: str | None = None,
          now_ms: float | None = None) -> Stamped:
    """``record`` (a struct with ``actor``, ``principal``, ``at_ms``) with who and when set."""
    return msgspec.structs.replace(record, actor=actor or os_user(),
                                   principal=principal(settings),
                                   at_ms=time.time() * 1000.0 if now_ms is None else now_ms)


def audit_key(kind: str, at_ms: float | None) -> bytes:
    """A key of its own for one change (compaction keeps every one)."""
    return AUDIT_PREFIX + f"{kind}/{int(at_ms or 0):013d}-{uuid.uuid4().hex[:8]}".encode()


@dataclass(frozen=True)
class Change:
    """One control record that says who and when."""

    key: str
    who: str
    at_ms: float
    principal: str | None
    body: dict[str, Any]
    offset: int


def change_of(key: bytes | None, value: bytes | None, offset: int = -1) -> Change | None:
    """The change a control record describes, or None when it says no who and when."""
    if not value:
        return None
    try:
        body = msgspec.json.decode(value)
    except msgspec.DecodeError:
        return None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("change"), dict):  # a model registry entry: who and when inside
        body = {**body, **body["change"]}
    who = next((body[f] for f in WHO if isinstance(body.get(f), str)), None)
    when = next((body[f] for f in WHEN if isinstance(body.get(f), int | float)), None)
    if who is None or when is None:
        return None
    found = body.get("principal")
    return Change((key or b"").decode(errors="replace"), who, float(when),
                  found if isinstance(found, str) else None, body, offset)


def history(settings: Settings, timeout_s: float = 10.0) -> list[Change]:
    """Every change on the control topic, oldest first. A change is written twice (its live
    key and its audit key) and compaction may have removed the first: each is listed once,
    from its audit record when there is one."""
    changes = list(_read(settings, timeout_s))
    audited = {(c.who, c.at_ms) for c in changes if c.key.startswith(AUDIT_PREFIX.decode())}
    kept = [c for c in changes if c.key.startswith(AUDIT_PREFIX.decode())
            or (c.who, c.at_ms) not in audited]
    return sorted(kept, key=lambda c: (c.at_ms, c.offset))


def _read(settings: Settings, timeout_s: float) -> Iterator[Change]:
    deadline = time.monotonic() + timeout_s
    with TopicReader(settings, settings.topic("control"), name="policy-history",
                     leader_wait_s=0.0) as reader:
        while not reader.caught_up() and time.monotonic() < deadline:
            for record in reader.poll(0.2, 500):
                change = change_of(record.key(), record.value(), record.offset() or -1)
                if change is not None:
                    yield change


def describe(change: Change) -> str:
    """One line: when (UTC), who, principal, key, and the record without its audit fields."""
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(change.at_ms / 1000))
    rest = {k: v for k, v in change.body.items()
            if k not in (*WHO, *WHEN, "principal", "v")}
    kind = change.key.removeprefix(AUDIT_PREFIX.decode()).rsplit("/", 1)[0]
    return (f"{when}.{int(change.at_ms % 1000):03d}Z  {change.who:<12} "
            f"{change.principal or '-':<16} {kind:<10} {msgspec.json.encode(rest).decode()}")
