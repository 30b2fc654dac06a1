"""One micro-batch of input records turned into one array of rows: pure, no Kafka.

:func:`prepare` is the worker's whole decode pass. Each record ends up in
exactly one of three places:

- **invalid** — undecodable JSON, a non-finite value (``NaN``, ``1e999``), a
  value of the wrong type for its feature (a string for a number, a number for a
  string), a missing or extra feature name, a feature list of the wrong
  length, or a ``reply_to`` that is no return address of the deployment.
  Counted and skipped: the rendezvous answers it ``rejected``.
- **shed** — valid, but its absolute deadline
  (:func:`rendezvous.messages.deadline_at`) less the rendezvous' smallest
  delivery margin had already passed when the batch arrived. Counted and
  skipped, not scored and no record either: the rendezvous has
  already answered it with a fallback or ``timeout``, so any record for it would
  be pure load at the worst moment (a worker falls behind exactly when the
  system is overloaded).
- **a row** of :attr:`Prepared.rows`, in the model's feature order, with its
  request id and the input record's partition number (the score goes to the same
  partition number: co-partitioning).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Protocol

import numpy as np

from rendezvous.messages import (
    DEADLINE_BOUNDS,
    DeadlineBounds,
    FeatureSchema,
    FeatureValue,
    Invalid,
    deadline_at,
    decode_input,
    feature_row,
)
from rendezvous.replyto import refusal

TIMESTAMP_NOT_AVAILABLE = 0
"""``confluent_kafka.TIMESTAMP_NOT_AVAILABLE``, repeated so this module needs no Kafka."""


class RecordLike(Protocol):
    """What :func:`prepare` reads of a ``confluent_kafka.Message``."""

    def value(self) -> bytes | None: ...

    def partition(self) -> int | None: ...

    def timestamp(self) -> tuple[int, int]: ...


@dataclass
class Prepared:
    """A batch after decoding: the rows to score, and what was left out and why."""

    rows: np.ndarray
    """Shape ``[len(ids), n_features]``, one row per valid, live request: float32 when every
    feature is a number, else objects (numbers and strings)."""
    ids: list[str]
    partitions: list[int]
    """Input partition number of each row."""
    invalid: list[Invalid] = field(default_factory=list)
    shed: int = 0
    """Valid requests whose deadline had passed on arrival."""


class RowBuilder:
    """Decodes records into rows for one model's feature order."""

    def __init__(self, schema: FeatureSchema | Sequence[str], default_deadline_ms: float,
                 margin_ms: float = 0.0, *, reply_prefix: str | None = None,
                 deadlines: DeadlineBounds = DEADLINE_BOUNDS) -> None:
        """``reply_prefix``: the deployment's topic prefix, whose return addresses alone a
        ``reply_to`` may name (serve rejects any other, so it is not scored); None: not
        checked. ``deadlines``: serve's bounds of ``deadline_ms``, so both agree."""
        self.reply_prefix, self.deadlines = reply_prefix, deadlines
        self.schema = schema if isinstance(schema, FeatureSchema) else FeatureSchema(schema)
        self.names = self.schema.names
        self.width = len(self.names)
        # Numbers only: msgspec checks every value's type while decoding, so the rows can be
        # taken as they come; otherwise each row is checked against the schema.
        self._trusted = self.schema.numeric and not self.schema.integers
        self.default_deadline_ms = default_deadline_ms
        # The rendezvous decides a request by its deadline less at least this margin: past
        # that point a score can no longer change the answer.
        self.margin_ms = margin_ms
        # itemgetter picks every named feature in one C call; the canonical
        # messages.feature_row is used only to explain a mismatch.
        getter = itemgetter(*self.names)
        self._pick = getter if self.width > 1 else lambda d: (getter(d),)

    def prepare(self, records: Sequence[RecordLike], now_ms: float) -> Prepared:
        """Decode and validate ``records`` received at ``now_ms`` (epoch ms); never raises."""
        ids: list[str] = []
        partitions: list[int] = []
        rows: list[Sequence[FeatureValue]] = []
        invalid: list[Invalid] = []
        shed = 0
        width = self.width
        for record in records:
            try:
                prepared = self._row(record, now_ms)
            except Exception as exc:  # noqa: BLE001 - a bug on one record must not stop the worker
                prepared = Invalid(f"internal error on this record: {exc!r}"[:300])
            if prepared is None:
                shed += 1
            elif isinstance(prepared, Invalid):
                invalid.append(prepared)
            else:
                rid, partition, row = prepared
                ids.append(rid)
                partitions.append(partition)
                rows.append(row)
        if self.schema.numeric:
            array = np.fromiter(chain.from_iterable(rows), dtype=np.float32,
                                count=len(rows) * width).reshape(len(rows), width)
        else:
            array = np.empty((len(rows), width), dtype=object)
            for i, row in enumerate(rows):
                array[i] = row
        return Prepared(array, ids, partitions, invalid, shed)

    def _row(self, record: RecordLike, now_ms: float
             ) -> tuple[str, int, Sequence[FeatureValue]] | Invalid | None:
        """(id, partition, row) of a valid, live request; Invalid; or None when shed."""
        width = self.width
        event = decode_input(record.value(), self.schema)
        if isinstance(event, Invalid):
            return event
        features = event.features
        row: Sequence[FeatureValue] | Invalid
        if not self._trusted:
            row = feature_row(event, self.schema)
        elif isinstance(features, list):
            row = features if len(features) == width else feature_row(event, self.schema)
        elif len(features) == width:
            try:
                row = self._pick(features)
            except KeyError:
                row = feature_row(event, self.schema)
        else:
            row = feature_row(event, self.schema)
        if isinstance(row, Invalid):
            return row
        if event.reply_to is not None and self.reply_prefix is not None:
            why = refusal(event.reply_to, self.reply_prefix)
            if why is not None:
                return Invalid(why, event.id)
        kind, ts = record.timestamp()
        record_ts = ts if kind != TIMESTAMP_NOT_AVAILABLE and ts >= 0 else now_ms
        if (deadline_at(event, record_ts, self.default_deadline_ms, self.deadlines, now_ms)
                - self.margin_ms <= now_ms):
            return None
        return event.id, record.partition() or 0, row


def prepare(records: Sequence[RecordLike], schema: FeatureSchema | Sequence[str], now_ms: float,
            default_deadline_ms: float) -> Prepared:
    """One-off form of :meth:`RowBuilder.prepare` (the runner keeps one builder)."""
    return RowBuilder(schema, default_deadline_ms).prepare(records, now_ms)
