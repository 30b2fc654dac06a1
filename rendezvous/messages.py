"""The message contracts, and the one place they are encoded and decoded.

Transport code sees bytes only; everything that turns bytes into meaning (and
back) lives here. Decoding failures are data: :class:`Invalid` carries the
reason, so callers can dead-letter the record and go on.

Schema version 2. Every message carries ``v``; a reader accepts any version it
knows and ignores fields it does not know. Version 2 added what models other than a
binary classifier return: string feature values, labels that are strings or numbers,
and per-class ``probabilities``; a version-1 record reads as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal, NamedTuple, TypeVar

import msgspec

from rendezvous.errors import RendezvousError

T = TypeVar("T")

SCHEMA_VERSION = 2

FeatureValue = float | str
Features = dict[str, FeatureValue] | list[FeatureValue]
Label = int | str
"""A class label as the model has it: an integer or a string."""


class InputEvent(msgspec.Struct, frozen=True):
    """A scoring request, produced to the ``input`` topic with key = ``id``.

    ``deadline_ms`` is the request's time budget in milliseconds, counted from
    ``ts`` (epoch milliseconds when the request was made); without ``ts`` the
    Kafka record's timestamp is used, without ``deadline_ms`` the policy's
    default; serve's bounds clamp it (:func:`request_deadline`). ``reply_to`` names a Redis
    return address for synchronous callers, of the one shape :mod:`rendezvous.replyto`
    makes (anything else: the request is rejected).
    ``features`` values are numbers or strings, as the model's manifest types them.
    Unknown fields are ignored here and kept byte-for-byte in the archive.
    """

    id: str
    features: Features
    deadline_ms: float | None = None
    reply_to: str | None = None
    ts: float | None = None
    progressive: bool = False
    """Ask for a ``provisional`` result as soon as any valid answer is in, before the
    ``final`` one (docs/better-answers.md: progressive answers)."""
    v: int = SCHEMA_VERSION


ScoreStatus = Literal["ok", "error"]


class Score(msgspec.Struct, frozen=True):
    """One model's answer to one request, on the ``scores`` topic (same partition as the input)."""

    id: str
    model: str
    version: str
    status: ScoreStatus
    score: float | None = None
    """Binary: probability of the positive class; multiclass: the predicted class's
    probability; regression: the predicted value."""
    label: Label | None = None
    """The predicted class (classifiers; None for regression)."""
    received_ms: float = 0.0
    """Epoch ms when the worker received the input."""
    scored_ms: float = 0.0
    """Epoch ms when the worker produced the score."""
    reason: str | None = None
    v: int = SCHEMA_VERSION
    shadow: bool = False
    """A shadow version's answer: recorded in the decision as a candidate, never chosen."""
    probabilities: dict[str, float] | None = None
    """Multiclass: the probability of every class, by class label (as a string)."""


ScoredStatus = Literal["ok", "fallback", "timeout", "rejected"]


class Scored(msgspec.Struct, frozen=True):
    """A result of a request, on the ``scored`` topic and its return address: exactly one
    final result per request, and for a progressive request possibly provisional ones first
    (``provisional`` true, Kafka header :data:`PROVISIONAL_HEADER`)."""

    id: str
    status: ScoredStatus
    score: float | None = None
    label: Label | None = None
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
    probabilities: dict[str, float] | None = None
    """Multiclass: the answering model's probability of every class."""


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
    label: Label | None = None
    """The class it predicted (classifiers; None for regression and older records)."""


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
    """Per-model validity rule: a score outside [min_score, max_score] or a confidence
    below ``min_confidence`` counts as no answer. An unset bound is the task's own: [0, 1]
    for a classifier's probability, none for a regression's value. A regression's answer
    has no confidence, so ``min_confidence`` does not apply to it."""

    min_score: float | None = None
    max_score: float | None = None
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
    sha256: str | None = None
    """Hex sha256 of the version's ``model.onnx`` (its manifest's, read when the change was
    made); None in changes made before it was recorded."""


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
    sha256: dict[str, str] = {}
    """Version -> hex sha256 of its ``model.onnx``, recorded when the version first entered
    the registry and never changed after: a worker refuses a version whose bytes differ
    (empty in entries made before it was recorded)."""


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
    sha256: str | None = None
    """The sha256 of the ``model.onnx`` the backtest scored: ``model promote`` refuses the
    version when its bytes are no longer these (None: an older verdict, which says not)."""


class Feedback(msgspec.Struct, frozen=True):
    """A ground-truth label for a request, on the ``feedback`` topic: the true class of a
    classifier's request (integer or string), the true value of a regression's."""

    id: str
    label: int | float | str
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
``max_orphans`` scores per partition for requests it has not seen, so their size is bounded.
A multiclass model's records carry every class's probability: :func:`max_score_bytes`."""

BYTES_PER_CLASS = 32
"""Room per class in a score record, besides the class label itself: quotes, colon, comma and
a probability (msgspec writes a float in at most 24 characters)."""


def max_score_bytes(classes: Iterable[object] = ()) -> int:
    """The size bound of a score record of a model with ``classes``: :data:`MAX_SCORE_BYTES`
    plus, per class, its label's length and :data:`BYTES_PER_CLASS`."""
    return MAX_SCORE_BYTES + sum(len(str(c).encode()) + BYTES_PER_CLASS for c in classes)


POLICY_KEY = b"policy"
PROVISIONAL_HEADER = "rendezvous.provisional"
"""Kafka header on every provisional ``scored`` record (value ``1``): a reader keeping the
final result per id skips these without decoding them. Final results have no such header."""
MODEL_KEY_PREFIX = b"model/"
BACKTEST_KEY_PREFIX = b"backtest/"
DEADLETTER_REASON_HEADER = "rendezvous.reason"

class NumericInput(InputEvent, frozen=True):
    """An :class:`InputEvent` decoded for a model whose features are all numbers: msgspec
    refuses a string value while decoding, so no value needs checking afterwards."""

    features: dict[str, float] | list[float]  # type: ignore[assignment]


_encoder = msgspec.json.Encoder()
_input_decoder = msgspec.json.Decoder(InputEvent)
_numeric_input_decoder = msgspec.json.Decoder(NumericInput)
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


def decode_input(data: bytes | None, schema: FeatureSchema | None = None) -> InputEvent | Invalid:
    """Decode and structurally validate an input event; never raises.

    With the ``schema`` of a model whose features are all numbers, a string feature value
    is refused while decoding (named in the reason); :func:`feature_row` checks the rest.
    """
    if not data:
        return Invalid("empty record")
    if len(data) > MAX_INPUT_BYTES:
        return Invalid(f"record of {len(data)} bytes, more than {MAX_INPUT_BYTES}")
    numeric = schema is not None and schema.numeric
    try:
        event = (_numeric_input_decoder if numeric else _input_decoder).decode(data)
    except Exception as exc:  # noqa: BLE001 - any bytes must end as a rejection, never a crash
        if numeric and schema is not None:
            typed = decode_input(data)  # the general form names the feature that is no number
            if not isinstance(typed, Invalid):
                row = feature_row(typed, schema)
                if isinstance(row, Invalid):
                    return row
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


class DeadlineBounds(NamedTuple):
    """The shortest and longest ``deadline_ms`` a request may ask for (``serve.min_deadline_ms``
    and ``serve.max_deadline_ms``; workers use serve's, so both agree)."""

    min_ms: float = 1.0
    max_ms: float = 60_000.0


DEADLINE_BOUNDS = DeadlineBounds()

Clamp = Literal["min", "max", "future"]
"""Which bound changed a request's deadline: its ``deadline_ms`` was under the minimum or over
the maximum, or its ``ts`` (else its record's timestamp, which a producer may set too) lay
so far ahead that it would have been waited for longer than the maximum from its arrival."""


def request_deadline(event: InputEvent, record_ts_ms: float, default_deadline_ms: float,
                     bounds: DeadlineBounds = DEADLINE_BOUNDS, now_ms: float | None = None
                     ) -> tuple[float, Clamp | None]:
    """The request's absolute deadline (epoch ms), and which bound clamped it (None: none).

    Its ``ts`` (else the record's timestamp) plus its ``deadline_ms`` clamped to
    ``[bounds.min_ms, bounds.max_ms]`` (else ``default_deadline_ms``, the live policy's, taken
    as is); and, given the time it arrived (``now_ms``), never later than that plus the
    longer of ``bounds.max_ms`` and that budget, whatever its timestamps say. So a request
    written straight to Kafka can neither hold serve's committed position back for longer
    than the maximum nor ask for a deadline so short that waiting for it is a busy loop.
    """
    budget = event.deadline_ms
    clamp: Clamp | None = None
    if budget is None:
        budget = default_deadline_ms
    elif budget < bounds.min_ms:
        budget, clamp = bounds.min_ms, "min"
    elif budget > bounds.max_ms:
        budget, clamp = bounds.max_ms, "max"
    at = (event.ts if event.ts is not None else record_ts_ms) + budget
    if now_ms is not None:
        latest = now_ms + (budget if budget > bounds.max_ms else bounds.max_ms)
        if at > latest:
            return latest, "future"
    return at, clamp


def deadline_at(event: InputEvent, record_ts_ms: float, default_deadline_ms: float,
                bounds: DeadlineBounds = DEADLINE_BOUNDS, now_ms: float | None = None) -> float:
    """The request's absolute deadline (epoch ms), as :func:`request_deadline` clamps it. One
    rule for every component, so workers shed exactly what the rendezvous has given up on
    (a deadline clamped by its arrival time may differ by the time between the worker's
    arrival and serve's)."""
    return request_deadline(event, record_ts_ms, default_deadline_ms, bounds, now_ms)[0]


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


def decode_score(data: bytes | None, max_bytes: int = MAX_SCORE_BYTES) -> Score:
    """A worker's score; raises :class:`Undecodable` (only) for bad bytes, a record over
    ``max_bytes`` (:func:`max_score_bytes` of the models' classes) or an id over
    :data:`MAX_ID_LENGTH`."""
    if data and len(data) > max_bytes:
        raise Undecodable(f"score record of {len(data)} bytes, more than {max_bytes}")
    score = _decoding(_score_decoder.decode, "score", data)
    if len(score.id) > MAX_ID_LENGTH:
        raise Undecodable(f"score id of {len(score.id)} characters, more than {MAX_ID_LENGTH}")
    return score


def decode_scored(data: bytes | None) -> Scored:
    """A final result; raises :class:`Undecodable` (only) for bad bytes."""
    return _decoding(_scored_decoder.decode, "scored", data)


RecordHeaders = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None]
"""A consumed record's headers, as confluent-kafka types them (a list in practice)."""


def header(headers: RecordHeaders | None, name: str) -> str | bytes | None:
    """The value of header ``name`` (the first one), or None when there is none."""
    if not headers:  # the common case: no headers at all
        return None
    if isinstance(headers, Mapping):
        return headers.get(name)
    for key, value in headers:
        if key == name:
            return value
    return None


def is_provisional(headers: RecordHeaders | None) -> bool:
    """Whether a ``scored`` record with these Kafka headers (``Message.headers()``) is a
    provisional result."""
    return header(headers, PROVISIONAL_HEADER) is not None


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


class FeatureSchema:
    """A model's features as events carry them: names in the model's order, and which are
    strings or integers (every other feature is a number). Built from the manifest
    (``Manifest.schema``)."""

    __slots__ = ("integers", "kinds", "names", "numeric", "strings")

    def __init__(self, names: Sequence[str], strings: Iterable[str] = (),
                 integers: Iterable[str] = ()) -> None:
        self.names = list(names)
        self.strings = frozenset(strings)
        self.integers = frozenset(integers)
        self.numeric = not self.strings
        """Every feature is a number: decoding alone checks the values' types."""
        self.kinds = [
            "string" if n in self.strings else "integer" if n in self.integers else "number"
            for n in self.names]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FeatureSchema) and (
            self.names, self.strings, self.integers) == (other.names, other.strings,
                                                         other.integers)

    def __hash__(self) -> int:
        return hash((tuple(self.names), self.strings, self.integers))

    def __repr__(self) -> str:
        return f"FeatureSchema({len(self.names)} features, strings {sorted(self.strings)})"

    def check(self, row: Sequence[FeatureValue], rid: str | None = None
              ) -> list[FeatureValue] | Invalid:
        """``row`` (in the model's order) when every value has its feature's type, else why
        not, naming the first feature that does not."""
        for name, kind, value in zip(self.names, self.kinds, row, strict=True):
            if kind == "string":
                if value.__class__ is not str:
                    return Invalid(f"feature {name!r} must be a string, got {value!r}"[:300],
                                   rid)
            elif value.__class__ is not float:
                return Invalid(f"feature {name!r} must be a number, got {value!r}"[:300], rid)
            elif kind == "integer" and not value.is_integer():
                return Invalid(f"feature {name!r} must be an integer, got {value!r}", rid)
        return list(row)


def feature_row(event: InputEvent, schema: FeatureSchema | Sequence[str]
                ) -> list[FeatureValue] | Invalid:
    """The event's features in the model's order, or why they do not fit.

    Named features must be exactly the schema's names (nothing missing, nothing extra);
    a list must have exactly as many values. Each value must have its feature's type (a
    plain list of names: every feature is a number).
    """
    if not isinstance(schema, FeatureSchema):
        schema = FeatureSchema(schema)
    names = schema.names
    features = event.features
    if isinstance(features, list):
        if len(features) != len(names):
            return Invalid(f"expected {len(names)} features, got {len(features)}", event.id)
        row: list[FeatureValue] = features
    elif len(features) != len(names) or any(name not in features for name in names):
        missing = [n for n in names if n not in features]
        extra = [n for n in features if n not in set(names)]
        return Invalid(f"feature mismatch: missing {missing[:5]}, extra {extra[:5]}", event.id)
    else:
        row = [features[name] for name in names]
    if event.__class__ is NumericInput and not schema.integers:
        return row  # msgspec already made every value a float
    return schema.check(row, event.id)
