"""One input partition's share of the rendezvous: its core, commit tracker and return addresses.

Requests, their scores and their results share a partition number
(co-partitioning), so a partition is self-contained: it moves between
instances on a rebalance by dropping this object on one side and rebuilding it
from Kafka on the other.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable

import msgspec
from prometheus_client import Counter

from rendezvous.core import LiveLatency, OffsetTracker, Outcome, Rendezvous, Scales
from rendezvous.messages import (
    DEADLINE_BOUNDS,
    MAX_ID_LENGTH,
    DeadlineBounds,
    FeatureSchema,
    FeatureValue,
    InputEvent,
    Invalid,
    Policy,
    Score,
    decode_input,
    feature_row,
    request_deadline,
)
from rendezvous.replyto import refusal
from rendezvous.service.margin import DeliveryMargin
from rendezvous.service.ports import InRecord
from rendezvous.transport.bad_records import offset_of

CONFLICTING_IDS = Counter(
    "rendezvous_serve_conflicting_ids",
    "Input records under an id already seen (answered or in flight) whose payload (features, "
    "deadline_ms, reply_to) differs from the first one's: dead-lettered, never answered")
DEADLINES_CLAMPED = Counter(
    "rendezvous_serve_deadlines_clamped",
    "Requests whose deadline was clamped: deadline_ms under serve.min_deadline_ms (min) or "
    "over serve.max_deadline_ms (max), or a ts (else record timestamp) so far ahead that it "
    "would be waited for longer than the maximum from its arrival (future)", ["bound"])
for _bound in ("min", "max", "future"):
    DEADLINES_CLAMPED.labels(_bound)

REMEMBER_DECIDED = 500_000
"""Decided ids a partition remembers (so a redelivered request is not answered twice), and
payload digests of the ids it has seen: as many."""
ANSWERED_CONFLICT = "id already answered with a different payload"
IN_FLIGHT_CONFLICT = "id already in flight with a different payload"
DEFAULT_PREFIX = "rendezvous."
"""The default ``Settings.topic_prefix``: the return addresses a bare state accepts."""

_digest_encoder = msgspec.json.Encoder()


class Digests:
    """An 8-byte digest of the payload of each of the last ``capacity`` ids seen (FIFO)."""

    __slots__ = ("_by_id", "_order", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_id: dict[str, bytes] = {}
        self._order: deque[str] = deque()

    def first(self, request_id: str, digest: bytes) -> bytes | None:
        """The digest known for ``request_id``; else remember ``digest`` for it, and None."""
        known = self._by_id.get(request_id)
        if known is None:
            self._by_id[request_id] = digest
            self._order.append(request_id)
            if len(self._order) > self.capacity:
                del self._by_id[self._order.popleft()]
        return known

    def __len__(self) -> int:
        return len(self._by_id)


def payload_digest(event: InputEvent, row: list[FeatureValue] | None = None) -> bytes:
    """8 bytes of BLAKE2b of what a request asks: its features (``row``, in the model's
    order, when validated against a schema), ``deadline_ms`` and ``reply_to``. Not its
    ``ts``: the same request sent again is the same payload."""
    data = _digest_encoder.encode((event.features if row is None else row,
                                   event.deadline_ms, event.reply_to))
    return hashlib.blake2b(data, digest_size=8).digest()


def raw_digest(value: bytes | None) -> bytes:
    """The digest of an input record that is no valid request: of its bytes."""
    return hashlib.blake2b(value or b"", digest_size=8, person=b"invalid").digest()


class PartitionState:
    """The rendezvous for the requests of one input partition."""

    def __init__(self, partition: int, policy: Policy, clock: Callable[[], float],
                 schema: FeatureSchema | None, margin: DeliveryMargin | None = None,
                 scales: Scales | None = None, latency: LiveLatency | None = None, *,
                 reply_prefix: str = DEFAULT_PREFIX,
                 deadlines: DeadlineBounds = DEADLINE_BOUNDS) -> None:
        self.partition = partition
        self._clock = clock
        self.core = Rendezvous(policy, clock, scales=scales, latency=latency,
                               remember_decided=REMEMBER_DECIDED)
        self.digests = Digests(REMEMBER_DECIDED)
        """What each id seen asked: a second record under one is a replay when it asks the
        same, a conflict (dead-lettered, counted) when not."""
        self._reply_prefix = reply_prefix
        self._deadlines = deadlines
        self.inputs = OffsetTracker()
        self.scores_next: int | None = None  # scores offset to commit (consumed + 1)
        self.reply_to: dict[str, str] = {}
        self.late: dict[str, int] = {}
        """Answers per model that came after their request was decided, not yet reported
        on a decision."""
        self._schema = schema
        self._margin = margin or DeliveryMargin(0.0, 0.0)

    def on_input(self, record: InRecord) -> tuple[list[Outcome], str | None]:
        """Open (or reject) the request in ``record``: the decisions it settles, and why the
        record must be dead-lettered, if it must (rejected: invalid, or a ``reply_to`` that
        is no return address of this deployment; or an id already seen with a different
        payload, which is counted and never answered).

        A second record under an id this partition has seen is a replay when it asks the
        same (features, ``deadline_ms``, ``reply_to``) and is dropped silently; an id
        restored as answered after a restart has no digest, so a record under it is taken
        for a replay."""
        value = record.value()
        event = decode_input(value, self._schema)
        row: list[FeatureValue] | None = None
        if not isinstance(event, Invalid):
            if self._schema is not None:
                checked = feature_row(event, self._schema)
                if isinstance(checked, Invalid):
                    event = checked
                else:
                    row = checked
            if not isinstance(event, Invalid) and event.reply_to is not None:
                why = refusal(event.reply_to, self._reply_prefix)
                if why is not None:  # serve writes nothing in Redis for it
                    event = Invalid(why, event.id)
        ts = float(record.timestamp()[1])
        offset = offset_of(record)
        if isinstance(event, Invalid):
            rid = event.id or _key_or_position(record)
            self.inputs.track(offset, rid, resolved=True)
            conflict = self._conflict(rid, raw_digest(value))
            if conflict is not None:
                return [], conflict
            outcomes = self.core.reject(rid, event.reason, ts)
            return outcomes, event.reason if outcomes else None
        rid = event.id
        conflict = self._conflict(rid, payload_digest(event, row))
        if conflict is not None:
            self.inputs.track(offset, rid, resolved=True)
            return [], conflict
        if self.core.is_decided(rid):  # answered before (a replay, a restart, a rebalance)
            self.inputs.track(offset, rid, resolved=True)
            return [], None
        self.inputs.track(offset, rid)
        if event.reply_to:
            self.reply_to[rid] = event.reply_to
        start = event.ts if event.ts is not None else ts
        deadline, clamp = request_deadline(event, ts, self.core.policy.deadline_ms,
                                           self._deadlines, self._clock())
        if clamp is not None:
            DEADLINES_CLAMPED.labels(clamp).inc()
        return self.core.open(rid, start, self._margin.decide_by(deadline, bool(event.reply_to)),
                              event.progressive), None

    def _conflict(self, rid: str, digest: bytes) -> str | None:
        """Why a record under ``rid`` asking ``digest`` must be dead-lettered (``rid`` was
        seen asking something else), or None: remembered when new, a replay when not."""
        known = self.digests.first(rid, digest)
        if known is None or known == digest:
            return None
        CONFLICTING_IDS.inc()
        return ANSWERED_CONFLICT if self.core.is_decided(rid) else IN_FLIGHT_CONFLICT

    def reject(self, record: InRecord, reason: str) -> list[Outcome]:
        """Answer the request in ``record`` ``rejected`` (once), whatever its bytes."""
        rid = _key_or_position(record)
        self.inputs.track(offset_of(record), rid, resolved=True)
        return self.core.reject(rid, reason, float(record.timestamp()[1]))

    def on_score(self, record: InRecord, score: Score) -> list[Outcome]:
        self.scores_next = offset_of(record) + 1
        outcomes = self.core.offer(score)
        if not outcomes and self.core.is_decided(score.id):  # late: counted, never re-answered
            self.late[score.model] = self.late.get(score.model, 0) + 1
        return outcomes

    def take_late(self) -> dict[str, int]:
        """The late answers counted since the last call, per model."""
        late, self.late = self.late, {}
        return late

    def settle(self, outcomes: list[Outcome]) -> list[tuple[str, Outcome]]:
        """Mark the final ``outcomes`` answered (a provisional one answers nothing: its
        request still holds the commit back); returns those with a return address."""
        replies = []
        for outcome in outcomes:
            rid = outcome.request_id
            if outcome.decision is None:
                reply_to = self.reply_to.get(rid)
                if reply_to:
                    replies.append((reply_to, outcome))
                continue
            self.inputs.resolve(rid)
            reply_to = self.reply_to.pop(rid, None)
            if reply_to:
                replies.append((reply_to, outcome))
        return replies


def _key_or_position(record: InRecord) -> str:
    key = record.key()
    if key and len(key) <= MAX_ID_LENGTH:
        try:
            return key.decode()
        except UnicodeDecodeError:
            pass
    return f"{record.topic()}-{record.partition()}-{record.offset()}"
