"""The parts of a request's story, as plain data: what ``--format json`` prints, and what
the text lines are made of."""

from __future__ import annotations

import msgspec

from rendezvous.messages import Label


class Place(msgspec.Struct, frozen=True):
    """Where a record was: its topic, partition, offset and time, and what it was read from."""

    topic: str
    partition: int
    offset: int
    time: str | None
    """The record's timestamp, UTC ISO-8601."""
    source: str
    """``kafka`` or ``archive``."""


class InputPart(msgspec.Struct, frozen=True):
    place: Place
    size_bytes: int
    ts: str | None
    """The event's own ``ts`` (when the request was made), if it had one."""
    deadline_ms: float | None
    """The budget it asked for (None: the policy's default)."""
    progressive: bool
    reply_to: str | None
    redactions: list[str]
    """What the archive's redaction changed (nothing, read from Kafka: it holds the input
    as sent)."""
    copies: int = 1
    """How many times it was in the input topic (a producer's retry, a reused id)."""
    arrival: str | None = None
    """Archive only: when the decoy polled it."""


class AnswerPart(msgspec.Struct, frozen=True):
    model: str
    version: str
    shadow: bool
    score: float | None
    label: Label | None
    latency_ms: float | None
    """From the request's time to the answer's arrival."""
    valid: bool | None
    """As the rendezvous judged it (None: it came after the decision, never judged)."""
    reason: str | None
    after_decision_ms: float | None = None
    """How long after the decision it came (None: in time for it)."""
    worker_ms: float | None = None


class PolicyPart(msgspec.Struct, frozen=True):
    prefer: list[str]
    deadline_ms: float
    rules: dict[str, dict[str, float | None]]
    map_scores: bool
    prefer_in_time: bool
    published: str | None
    """When it was published (None: no policy was published before; serve's default)."""
    by: str | None
    newer: str | None = None
    """When the next policy was published, if before the decision."""


class ResultPart(msgspec.Struct, frozen=True):
    status: str
    words: str
    """The result as every command says one (:func:`rendezvous.demo.wording.describe_result`)."""
    model: str | None
    version: str | None
    score: float | None
    raw_score: float | None
    label: Label | None
    latency_ms: float
    reason: str | None
    place: Place


class DecisionPart(msgspec.Struct, frozen=True):
    status: str
    chosen: str | None
    version: str | None
    decided: str
    due: str
    """When it had to be decided (its deadline less serve's delivery margin)."""
    after_request_ms: float
    why: str
    """The decision's reason, in words."""
    quantiles: str | None
    place: Place


class FeedbackPart(msgspec.Struct, frozen=True):
    label: Label | float
    place: Place


class ReplyPart(msgspec.Struct, frozen=True):
    key: str
    state: str
    """``held`` (the key exists), ``gone`` (expired, or never written), or why it could
    not be asked."""
    words: str | None = None
    ttl_s: int | None = None


class Story(msgspec.Struct, frozen=True):
    """Everything found of one request."""

    id: str
    input: InputPart | None
    dead_letter: str | None
    policy: PolicyPart | None
    answers: list[AnswerPart]
    decision: DecisionPart | None
    provisional: list[ResultPart]
    scored: ResultPart | None
    feedback: list[FeedbackPart]
    reply: ReplyPart | None
    missing: list[str] = []
    """What the sources read did not hold (e.g. ``scores``: the archive has none)."""
