"""The message contracts, and the one place they are encoded and decoded.

Transport code sees bytes only; everything that turns bytes into meaning (and
back) lives here. Decoding failures are data: :class:`Invalid` carries the
reason, so callers can dead-letter the record and go on.

Schema version 1. Every message carries ``v``; a reader accepts any version it
knows and ignores fields it does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import msgspec

from rendezvous.errors import RendezvousError

T = TypeVar("T")

SCHEMA_VERSION = 1

Features = dict[str, float] | list[float]


class InputEvent(msgspec.Struct, frozen=True):
    """A scoring request, produced to the ``input`` topic with key = ``id``.

    ``deadline_ms`` is the request's time budget in milliseconds, counted from
    ``ts`` (epoch milliseconds when the request was made); without ``ts`` the
    Kafka record's timestamp is used, without ``deadline_ms`` the policy's
    default. ``reply_to`` names a Redis return address for synchronous callers.
    Unknown fields are ignored here and kept byte-for-byte in the archive.
    """

    id: str
    features: Features
    deadline_ms: float | None = None
    reply_to: str | None = None
    ts: float | None = None
    progressive: bool = False
    """Ask for a ``provisional`` result as soon as any valid answer is in, before the
    ``final`` one (README: progressive answers)."""
    v: int = SCHEMA_VERSION


ScoreStatus = Literal["ok", "error"]


class Score(msgspec.Struct, frozen=True):
    """One model's answer to one request, on the ``scores`` topic (same partition as the input)."""

    id: str
    model: str
    version: str
    status: ScoreStatus
    score: float | None = None
    """Probability of the positive class, in [0, 1]."""
    label: int | None = None
    received_ms: float = 0.0
    """Epoch ms when the worker received the input."""
    scored_ms: float = 0.0
    """Epoch ms when the worker produced the score."""
    reason: str | None = None
    v: int = SCHEMA_VERSION
    shadow: bool = False
    """A shadow version's answer: recorded in the decision as a candidate, never chosen."""


ScoredStatus = Literal["ok", "fallback", "timeout", "rejected"]


class Scored(msgspec.Struct, frozen=True):
    """A result of a request, on the ``scored`` topic and its return address: exactly one
    final result per request, and for a progressive request possibly provisional ones first
    (``provisional`` true, Kafka header :data:`PROVISIONAL_HEADER`)."""

    id: str
    status: ScoredStatus
    score: float | None = None
    label: int | None = None
    model: str | None = None
    version: str | None = None
    latency_ms: float = 0.0
    """From the request's ``ts`` to the decision."""
    answered: list[str] = []
    """Models whose valid answer had arrived when the decision was taken."""
    reason: str | None = None
    decided_ms: float = 0.0
    raw_score: float | None = None
    """The answering model's own score; ``score`` is on the preferred model's scale
    (mapped through both models' quantile functions, when the policy maps scores)."""
    provisional: bool = False
    """An early answer of a progressive request: the final result follows by the deadline."""
    v: int = SCHEMA_VERSION


class Candidate(msgspec.Struct, frozen=True):
    """One model's answer as the rendezvous saw it."""

    model: str
    version: str
    score: float | None
    latency_ms: float
    valid: bool
    reason: str | None = None
    service_ms: float | None = None
    """The worker's own time on it (scored - received), when it said."""
    shadow: bool = False
    """A shadow version's answer: recorded, never chosen."""


class Decision(msgspec.Struct, frozen=True):
    """Why a result was chosen, on the ``decisions`` topic: every candidate and the choice."""

    id: str
    status: ScoredStatus
    chosen: str | None
    candidates: list[Candidate]
    deadline_ms: float
    """When the request had to be decided, epoch ms: its deadline less serve's delivery
    margin, so that the result is received by the deadline."""
    decided_ms: float
    ts: float
    quantiles: str | None = None
    """Which quantile functions mapped the chosen score onto the preferred model's scale,
    e.g. ``reference:canary/1->primary/1`` (the manifests' training reference); None when
    the score was not mapped (the preferred model answered, mapping off, no reference)."""
    provisional: str | None = None
    """The model whose answer went out first as a provisional result (progressive requests)."""
    provisional_ms: float | None = None
    """When that provisional result was decided, epoch ms."""
    late: dict[str, int] = {}
    """Answers that came after their own request had been decided, per model: those
    counted on this partition since its previous decision (of other requests; they are
    never answered again). The monitor's per-model ``late`` counts are their sum."""
    v: int = SCHEMA_VERSION
    version: str | None = None
    """The version of the chosen model that answered (None when none was chosen)."""


class ModelRule(msgspec.Struct, frozen=True):
    """Per-model validity rule: a score outside [min_score, max_score] or below
    ``min_confidence`` (distance from 0.5, doubled) counts as no answer."""

    min_score: float = 0.0
    max_score: float = 1.0
    min_confidence: float = 0.0


class Policy(msgspec.Struct, frozen=True):
    """The live policy, on the compacted ``control`` topic under key ``policy``."""

    prefer: list[str] = msgspec.field(default_factory=lambda: ["primary", "canary"])
    deadline_ms: float = 50.0
    rules: dict[str, ModelRule] = {}
    map_scores: bool = True
    """Put a fallback's ``score`` on the preferred model's scale by quantiles (its own
    score stays in ``raw_score``); False: every result carries its model's own score."""
    prefer_in_time: bool = False
    """Stop waiting for a more preferred model when its live p99 latency says its answer
    would come after the request must be decided: answer with the valid one in hand."""
    actor: str | None = None
    """Who published it: ``--actor``, else the OS user (audit; absent in older records)."""
    principal: str | None = None
    """The Kafka principal that published it (``User:<name>``), when authenticated."""
    at_ms: float | None = None
    """When it was published, epoch ms."""
    v: int = SCHEMA_VERSION


class RegistryChange(msgspec.Struct, frozen=True):
    """Who changed a model's registry entry, when and how (the entry's audit trail).

    New audit fields (a ticket, an approver...) are added here with defaults; readers
    ignore fields they do not know."""

    action: str
    """``register``, ``shadow``, ``unshadow``, ``promote`` or ``rollback``."""
    version: str
    actor: str
    at_ms: float
    """Epoch ms of the change."""
    forced: bool = False
    """A promote that overrode a missing or failed backtest."""
    note: str | None = None


class ModelVersions(msgspec.Struct, frozen=True):
    """One model's registry entry, on the compacted ``control`` topic under key
    ``model/<name>``: the version live workers serve, the versions shadow workers score,
    and the earlier live versions a rollback returns to."""

    name: str
    live: str
    shadow: list[str] = []
    previous: list[str] = []
    """Earlier live versions, oldest first; a rollback returns to the last one."""
    change: RegistryChange | None = None
    """The change that made this entry."""
    v: int = SCHEMA_VERSION


class BacktestVerdict(msgspec.Struct, frozen=True):
    """The last backtest of one model version, on the ``control`` topic under key
    ``backtest/<name>/<version>``; ``model promote`` refuses a version without a pass."""

    name: str
    version: str
    passed: bool
    against: str
    """What it was compared with (``model`` or ``model:version``)."""
    reasons: list[str] = []
    """Why it failed (empty when it passed)."""
    metrics: dict[str, float] = {}
    actor: str = ""
    at_ms: float = 0.0
    v: int = SCHEMA_VERSION


class Feedback(msgspec.Struct, frozen=True):
    """A ground-truth label for a request, on the ``feedback`` topic."""

    id: str
    label: int
    ts: float | None = None
    v: int = SCHEMA_VERSION


class Invalid(msgspec.Struct, frozen=True):
    """A record that could not be decoded or validated, and why."""

    reason: str
    id: str | None = None


class Undecodable(RendezvousError, ValueError):
    """One record's bytes are not a valid message. The only exception a ``decode_*``
    function raises, whatever the bytes (deep nesting, bad UTF-8, huge numbers...)."""


MAX_INPUT_BYTES = 512 * 1024
"""An input record larger than this (512 KiB) is rejected before it is parsed: bounded memory
(the broker refuses records over ~1 MB by default; this bound holds on any topic config)."""
MAX_ID_LENGTH = 1024
"""A request id longer than this is rejected: it is copied into every score and result."""
MAX_SCORE_BYTES = 4 * 1024
"""A score record larger than this (4 KiB; a worker writes ~250 bytes) is undecodable, and so
is one whose id is longer than :data:`MAX_ID_LENGTH`: the rendezvous holds up to
``max_orphans`` scores per partition for requests it has not seen, so their size is bounded."""

POLICY_KEY = b"policy"
PROVISIONAL_HEADER = "rendezvous.provisional"
"""Kafka header on every provisional ``scored`` record (value ``1``): a reader keeping the
final result per id skips these without decoding them. Final results have no such header."""
MODEL_KEY_PREFIX = b"model/"
BACKTEST_KEY_PREFIX = b"backtest/"
DEADLETTER_REASON_HEADER = "rendezvous.reason"

_encoder = msgspec.json.Encoder()
_input_decoder = msgspec.json.Decoder(InputEvent)
_score_decoder = msgspec.json.Decoder(Score)
_scored_decoder = msgspec.json.Decoder(Scored)
_decision_decoder = msgspec.json.Decoder(Decision)
_policy_decoder = msgspec.json.Decoder(Policy)
_feedback_decoder = msgspec.json.Decoder(Feedback)
_versions_decoder = msgspec.json.Decoder(ModelVersions)
_verdict_decoder = msgspec.json.Decoder(BacktestVerdict)


def encode(message: msgspec.Struct) -> bytes:
    """Encode any message of this module as JSON bytes."""
    return _encoder.encode(message)


def decode_input(data: bytes | None) -> InputEvent | Invalid:
    """Decode and structurally validate an input event; never raises."""
    if not data:
        return Invalid("empty record")
    if len(data) > MAX_INPUT_BYTES:
        return Invalid(f"record of {len(data)} bytes, more than {MAX_INPUT_BYTES}")
    try:
        event = _input_decoder.decode(data)
    except Exception as exc:  # noqa: BLE001 - any bytes must end as a rejection, never a crash
        return Invalid(f"undecodable input: {_describe(exc)}", _salvage_id(data))
    if not event.id:
        return Invalid("empty id")
    if len(event.id) > MAX_ID_LENGTH:
        return Invalid(f"id of {len(event.id)} characters, more than {MAX_ID_LENGTH}")
    # No NaN/inf check needed: JSON has no literal for them and msgspec refuses
    # numbers out of float range, so a decoded float is always finite.
    if event.deadline_ms is not None and not event.deadline_ms > 0:
        return Invalid("deadline_ms must be positive", event.id)
    return event


def deadline_at(event: InputEvent, record_ts_ms: float, default_deadline_ms: float) -> float:
    """The request's absolute deadline (epoch ms): its ``ts`` (else the record's
    timestamp) plus its ``deadline_ms`` (else the default). One rule for every
    component, so workers shed exactly what the rendezvous has given up on."""
    start = event.ts if event.ts is not None else record_ts_ms
    budget = event.deadline_ms if event.deadline_ms is not None else default_deadline_ms
    return start + budget


def _salvage_id(data: bytes) -> str | None:
    """The request id of a record that failed typed decoding, if it has one."""
    try:
        raw = _id_only_decoder.decode(data)
    except Exception:  # noqa: BLE001 - no id to salvage
        return None
    rid = raw.id
    return rid if isinstance(rid, str) and 0 < len(rid) <= MAX_ID_LENGTH else None


class _IdOnly(msgspec.Struct):
    id: object = None


# Reads only the top-level ``id``; other fields are skipped without building them.
_id_only_decoder = msgspec.json.Decoder(_IdOnly)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:300] or type(exc).__name__


def _decoding(decoder: Callable[[bytes], T], kind: str, data: bytes | None) -> T:
    if not data:
        raise Undecodable(f"empty {kind} record")
    try:
        return decoder(data)
    except Exception as exc:  # noqa: BLE001 - RecursionError, DecodeError, ... all mean bad bytes
        raise Undecodable(f"undecodable {kind}: {_describe(exc)}") from exc


def decode_score(data: bytes | None) -> Score:
    """A worker's score; raises :class:`Undecodable` (only) for bad bytes, a record over
    :data:`MAX_SCORE_BYTES` or an id over :data:`MAX_ID_LENGTH`."""
    if data and len(data) > MAX_SCORE_BYTES:
        raise Undecodable(f"score record of {len(data)} bytes, more than {MAX_SCORE_BYTES}")
    score = _decoding(_score_decoder.decode, "score", data)
    if len(score.id) > MAX_ID_LENGTH:
        raise Undecodable(f"score id of {len(score.id)} characters, more than {MAX_ID_LENGTH}")
    return score


def decode_scored(data: bytes | None) -> Scored:
    """A final result; raises :class:`Undecodable` (only) for bad bytes."""
    return _decoding(_scored_decoder.decode, "scored", data)


def is_provisional(headers: list[tuple[str, Any]] | dict[str, Any] | None) -> bool:
    """Whether a ``scored`` record with these Kafka headers (``Message.headers()``) is a
    provisional result."""
    if not headers:  # the common case: a final result carries no headers
        return False
    if isinstance(headers, dict):
        return PROVISIONAL_HEADER in headers
    return any(key == PROVISIONAL_HEADER for key, _ in headers)


def decode_decision(data: bytes | None) -> Decision:
    """A decision; raises :class:`Undecodable` (only) for bad bytes."""
    return _decoding(_decision_decoder.decode, "decision", data)


def decode_policy(data: bytes | None) -> Policy:
    """A policy; raises :class:`Undecodable` (only) for bad bytes."""
    return _decoding(_policy_decoder.decode, "policy", data)


def decode_feedback(data: bytes | None) -> Feedback:
    """A feedback label; raises :class:`Undecodable` (only) for bad bytes."""
    return _decoding(_feedback_decoder.decode, "feedback", data)


def decode_model_versions(data: bytes | None) -> ModelVersions:
    """A model registry entry; raises :class:`Undecodable` (only) for bad bytes."""
    return _decoding(_versions_decoder.decode, "model registry entry", data)


def decode_backtest_verdict(data: bytes | None) -> BacktestVerdict:
    """A backtest verdict; raises :class:`Undecodable` (only) for bad bytes."""
    return _decoding(_verdict_decoder.decode, "backtest verdict", data)


def model_key(name: str) -> bytes:
    """The control-topic key of model ``name``'s registry entry."""
    return MODEL_KEY_PREFIX + name.encode()


def backtest_key(name: str, version: str) -> bytes:
    """The control-topic key of the last backtest of ``name`` at ``version``."""
    return BACKTEST_KEY_PREFIX + f"{name}/{version}".encode()


def feature_row(event: InputEvent, names: list[str]) -> list[float] | Invalid:
    """The event's features in the model's order, or why they do not fit.

    Named features must be exactly ``names`` (nothing missing, nothing extra);
    a list must have exactly ``len(names)`` values.
    """
    features = event.features
    if isinstance(features, list):
        if len(features) != len(names):
            return Invalid(f"expected {len(names)} features, got {len(features)}", event.id)
        return features
    if len(features) != len(names) or any(name not in features for name in names):
        missing = [n for n in names if n not in features]
        extra = [n for n in features if n not in set(names)]
        return Invalid(f"feature mismatch: missing {missing[:5]}, extra {extra[:5]}", event.id)
    return [features[name] for name in names]
