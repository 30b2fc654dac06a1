"""One input partition's share of the rendezvous: its core, commit tracker and return addresses.

Requests, their scores and their results share a partition number
(co-partitioning), so a partition is self-contained: it moves between
instances on a rebalance by dropping this object on one side and rebuilding it
from Kafka on the other.
"""

from __future__ import annotations

from collections.abc import Callable

from rendezvous.core import LiveLatency, OffsetTracker, Outcome, Rendezvous, Scales
from rendezvous.messages import (
    MAX_ID_LENGTH,
    FeatureSchema,
    Invalid,
    Policy,
    Score,
    deadline_at,
    decode_input,
    feature_row,
)
from rendezvous.service.margin import DeliveryMargin
from rendezvous.service.ports import InRecord
from rendezvous.transport.bad_records import offset_of


class PartitionState:
    """The rendezvous for the requests of one input partition."""

    def __init__(self, partition: int, policy: Policy, clock: Callable[[], float],
                 schema: FeatureSchema | None, margin: DeliveryMargin | None = None,
                 scales: Scales | None = None, latency: LiveLatency | None = None) -> None:
        self.partition = partition
        self.core = Rendezvous(policy, clock, scales=scales, latency=latency)
        self.inputs = OffsetTracker()
        self.scores_next: int | None = None  # scores offset to commit (consumed + 1)
        self.reply_to: dict[str, str] = {}
        self.late: dict[str, int] = {}
        """Answers per model that came after their request was decided, not yet reported
        on a decision."""
        self._schema = schema
        self._margin = margin or DeliveryMargin(0.0, 0.0)

    def on_input(self, record: InRecord) -> tuple[list[Outcome], Invalid | None]:
        """Open (or reject) the request in ``record``; the decisions it settles, and why
        it was rejected if it was."""
        event = decode_input(record.value(), self._schema)
        if not isinstance(event, Invalid) and self._schema is not None:
            row = feature_row(event, self._schema)
            if isinstance(row, Invalid):
                event = row
        ts = float(record.timestamp()[1])
        offset = offset_of(record)
        if isinstance(event, Invalid):
            rid = event.id or _key_or_position(record)
            self.inputs.track(offset, rid, resolved=True)
            return self.core.reject(rid, event.reason, ts), event
        rid = event.id
        if self.core.is_decided(rid):  # answered before a restart or rebalance
            self.inputs.track(offset, rid, resolved=True)
            return [], None
        self.inputs.track(offset, rid)
        if event.reply_to:
            self.reply_to[rid] = event.reply_to
        start = event.ts if event.ts is not None else ts
        deadline = deadline_at(event, ts, self.core.policy.deadline_ms)
        return self.core.open(rid, start, self._margin.decide_by(deadline, bool(event.reply_to)),
                              event.progressive), None

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
