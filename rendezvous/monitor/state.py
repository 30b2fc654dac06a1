"""The monitor's whole state, in plain Python: windows, the feedback join, alert dedupe.

Stream code calls ``observe_*`` with decoded messages; a timer calls
:meth:`MonitorState.close_due`. Every change is recorded as a (key, bytes or
None) pair that :meth:`take_changes` hands to whatever persists it (a faust
table's changelog), and :meth:`load` rebuilds the state from those pairs.

Keys: ``w|<kind>|<subject>|<window start>`` (a window aggregate),
``d|<newest window>|<chunk>`` (the decisions of one flush that wait for their
labels, together: one record per decision was a changelog record per request,
which cost the broker and this process more than everything else the monitor
persists), ``l|<id>`` (a label waiting for its decision),
``a|<window start>|<cause>|<subject>`` (an alert already sent). A chunk is
deleted once its newest window is past the join TTL; a decision joined before
that stays in its chunk, so after a restart it waits again, unlabelled, until
it expires (``r|<id>``, one decision per key, is still read from older
changelogs and moved into a chunk).
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from rendezvous.messages import Decision, Feedback, InputEvent, Label, feature_row
from rendezvous.model import ModelError, load_manifest, resolve_model
from rendezvous.model.manifest import Manifest, Task, score_quantiles
from rendezvous.model.quantiles import Quantiles
from rendezvous.monitor import alerts
from rendezvous.monitor.drift import DriftReference
from rendezvous.monitor.stats import as_number, label_key
from rendezvous.monitor.windows import (
    KINDS,
    Aggregate,
    DecisionWindow,
    DriftWindow,
    FeedbackWindow,
    ModelWindow,
    PairWindow,
    window_start,
)

CHUNK_DECISIONS = 2000
"""Most decisions waiting for labels in one changelog record (~90 bytes each): a flush
after a burst (a restart catching up reads tens of thousands a second) must stay well
under a Kafka record's 1 MB limit, which faust's producer enforces by crashing."""

ScoreReferences = Callable[[str, str], Quantiles | None]
"""(model, version) -> the reference quantile function of its score (None: unknown)."""
Manifests = Callable[[str, str | None], Manifest | None]
"""(model, version or None for the newest) -> its manifest (None: not in the models dir)."""


def manifests(models_dir: Path) -> Manifests:
    """Looks up (and keeps) each model version's manifest in ``models_dir``; None for a
    version it does not have."""
    found: dict[tuple[str, str | None], Manifest | None] = {}

    def lookup(model: str, version: str | None) -> Manifest | None:
        key = (model, version)
        if key not in found:
            try:
                found[key] = load_manifest(resolve_model(models_dir, model, version))
            except (ModelError, ValueError):
                found[key] = None
        return found[key]

    return lookup


def score_references(models_dir: Path | Manifests) -> ScoreReferences:
    """Looks up (and keeps) each model version's reference quantile function in
    ``models_dir`` (or through a :func:`manifests` lookup); None for a version it does not
    have."""
    lookup = manifests(models_dir) if isinstance(models_dir, Path) else models_dir
    found: dict[tuple[str, str], Quantiles | None] = {}

    def quantiles(model: str, version: str) -> Quantiles | None:
        key = (model, version)
        if key not in found:
            manifest = lookup(model, version)
            found[key] = score_quantiles(manifest) if manifest is not None else None
        return found[key]

    return quantiles


@dataclass(frozen=True)
class ModelInfo:
    """What the monitor needs of a model's manifest: its task, and its classes as
    :func:`~rendezvous.monitor.stats.label_key` (binary: negative, positive)."""

    task: Task
    classes: tuple[str, ...] = ()

    @classmethod
    def of(cls, task: Task, classes: list[Label]) -> ModelInfo:
        return cls(task, tuple(label_key(c) for c in classes))

    @property
    def binary_classes(self) -> tuple[str, str]:
        """(negative, positive) of a binary model (0 and 1 when the manifest has no two)."""
        return (self.classes[0], self.classes[1]) if len(self.classes) == 2 else ("0", "1")


BINARY = ModelInfo("binary", ("0", "1"))
"""A model the monitor knows nothing of: the bundled models' task."""


def shadow_subject(model: str, version: str) -> str:
    """The name a shadow version's answers are counted under: ``primary:2:shadow``."""
    return f"{model}:{version}:shadow"


Joined = Mapping[str, float | tuple[float, Label] | list[Any]]
"""A decision's valid answers waiting for a label, per subject: the score (binary: P(positive);
regression: the value), or for a multiclass model (score, predicted label) (a list once
restored)."""


class MonitorState:
    """Tumbling windows of ``window_s`` over scores, decisions, inputs and feedback.

    A shadow version's candidates are counted as a model of their own
    (:func:`shadow_subject`), with its feedback figures, never mixed with the live
    version's. With ``score_references``, canary and primary are also compared on
    one scale: each score mapped to its quantile under its own model's reference.

    Each model version's task comes from its manifest (``manifests``; a version not
    found there has the drift reference's task, else binary): canary and primary disagree
    when their classes differ (binary: score >= 0.5; multiclass: labels; regression: not
    compared, the quantile distances are its comparison), and feedback gives accuracy
    (classifiers; binary also AUC) or RMSE and MAE (regression)."""

    def __init__(self, window_s: float, reference: DriftReference | None = None,
                 primary: str = "primary", canary: str = "canary", grace_s: float = 1.0,
                 keep_windows: int = 10, join_ttl_s: float = 600.0,
                 thresholds: alerts.Thresholds | None = None,
                 score_references: ScoreReferences | None = None,
                 manifests: Manifests | None = None) -> None:
        self.window_ms = max(1, int(window_s * 1000))
        self.grace_ms = int(grace_s * 1000)
        self.keep_ms = keep_windows * self.window_ms
        self.join_ttl_ms = int(join_ttl_s * 1000)
        self.reference, self.primary, self.canary = reference, primary, canary
        self.thresholds = thresholds or alerts.Thresholds()
        self.score_references = score_references
        self.manifests = manifests
        self.default_info = (ModelInfo.of(reference.task, reference.classes)
                             if reference is not None else BINARY)
        self._infos: dict[tuple[str, str], ModelInfo] = {}
        self.subjects: dict[str, tuple[str, ModelInfo]] = {}
        """subject (model, or shadow version) -> (version, what it is) of its latest
        candidate."""
        self.aggs: dict[str, Aggregate] = {}
        self.decided: dict[str, tuple[int, Joined]] = {}
        self.labels: dict[str, tuple[Label | float, int]] = {}
        """id -> (label, window of arrival)."""
        self.alerted: set[str] = set()
        self.closed: set[int] = set()
        self.too_late = 0
        self._dirty: set[str] = set()
        self._deleted: set[str] = set()
        self._unsaved: dict[str, tuple[int, Joined]] = {}
        """Decisions waiting for labels, decided since the last :meth:`take_changes`."""
        self._chunks: dict[str, int] = {}
        """Persisted chunks of waiting decisions -> their newest window."""
        self._chunk_names = (f"{uuid.uuid4().hex[:8]}{n:x}" for n in itertools.count())
        self.newest_ms = 0

    # -- observing ---------------------------------------------------------

    def _window(self, ts_ms: float) -> int | None:
        ws = window_start(ts_ms, self.window_ms)
        if self.newest_ms and ws + self.keep_ms <= self.newest_ms:
            self.too_late += 1  # its window is already forgotten: counting it would re-open it
            return None
        return ws

    def _agg(self, kind: str, subject: str, ws: int) -> Any:
        key = f"w|{kind}|{subject}|{ws}"
        agg = self.aggs.get(key)
        if agg is None:
            agg = self.aggs[key] = KINDS[kind]()
        self._dirty.add(key)
        return agg

    # -- what each model is ------------------------------------------------

    def info(self, model: str, version: str) -> ModelInfo:
        """The task and classes of ``model`` at ``version`` (kept once looked up)."""
        key = (model, version)
        found = self._infos.get(key)
        if found is None:
            manifest = self.manifests(model, version) if self.manifests is not None else None
            found = self._infos[key] = (ModelInfo.of(manifest.task, manifest.classes)
                                        if manifest is not None else self.default_info)
        return found

    def subject_info(self, subject: str) -> ModelInfo:
        """What a subject is: as its latest decision said, else its manifest (a live model:
        the newest version), else the default."""
        found = self.subjects.get(subject)
        if found is not None:
            return found[1]
        model, version = subject, None
        if subject.endswith(":shadow"):
            model, version, _ = subject.rsplit(":", 2)
        manifest = self.manifests(model, version) if self.manifests is not None else None
        return (ModelInfo.of(manifest.task, manifest.classes) if manifest is not None
                else self.default_info)

    # -- observing ---------------------------------------------------------

    def observe_decision(self, decision: Decision) -> None:
        ws = self._window(decision.decided_ms or decision.ts)
        if ws is None:
            return
        d: DecisionWindow = self._agg("decisions", "all", ws)
        d.count += 1
        setattr(d, decision.status, getattr(d, decision.status) + 1)
        d.add_result(decision.status, decision.chosen)
        d.in_time += decision.decided_ms <= decision.deadline_ms
        if decision.decided_ms and decision.ts:
            d.end_to_end_ms.add(max(decision.decided_ms - decision.ts, 0.0))
        if decision.provisional is not None:
            d.provisional += 1
        valid: dict[str, float] = {}
        versions: dict[str, str] = {}
        labels: dict[str, Label] = {}  # the multiclass models' predicted labels
        subjects = self.subjects
        # Every answer that reached the rendezvous is a candidate of its decision, so the
        # decisions alone describe each model (reading the scores topic too doubled the
        # monitor's load for the same numbers).
        for c in decision.candidates:
            subject = shadow_subject(c.model, c.version) if c.shadow else c.model
            known = subjects.get(subject)
            if known is None or known[0] != c.version:  # rare: a subject's first or new version
                known = subjects[subject] = (c.version, self.info(c.model, c.version))
            info = known[1]
            m: ModelWindow = self._agg("model", subject, ws)
            m.candidates += 1
            m.scores += 1
            m.version = c.version
            m.latency_ms.add(max(c.latency_ms, 0.0))
            if c.service_ms is not None:
                m.service_ms.add(max(c.service_ms, 0.0))
            if c.reason is not None and c.reason.startswith("status error"):
                m.errors += 1
            if c.score is not None and math.isfinite(c.score):
                m.score.add(c.score)
                if c.valid:
                    valid[subject] = c.score
                    versions[subject] = c.version
                    if info.task == "multiclass" and c.label is not None:
                        labels[subject] = c.label
                    continue
            m.invalid += 1
        for model, late in decision.late.items():
            m = self._agg("model", model, ws)
            m.late += late
        primary, canary = self.primary, self.canary
        if primary in valid and canary in valid:
            pair: PairWindow = self._agg("pair", "all", ws)
            pair.both += 1
            task, other = subjects[primary][1].task, subjects[canary][1].task
            if task == other == "binary":
                pair.disagree += int((valid[primary] >= 0.5) != (valid[canary] >= 0.5))
            elif task == other == "multiclass" and primary in labels and canary in labels:
                pair.disagree += label_key(labels[primary]) != label_key(labels[canary])
            else:  # regression (no classes), a label missing, or two different tasks
                pair.uncompared += 1
            pair.primary.add(valid[primary])
            pair.canary.add(valid[canary])
            self._mapped(pair, valid, versions)
        if valid:
            joined: Joined = valid
            if labels:
                joined = {**valid, **{s: (valid[s], label) for s, label in labels.items()}}
            pending = self.labels.pop(decision.id, None)
            if pending is not None:
                self._deleted.add(f"l|{decision.id}")
                self._join(ws, joined, pending[0])
            else:
                self.decided[decision.id] = self._unsaved[decision.id] = (ws, joined)

    def _mapped(self, pair: PairWindow, valid: dict[str, float],
                versions: dict[str, str]) -> None:
        """Both scores of a pair as quantiles of their own references (when both are known)."""
        if self.score_references is None:
            return
        p = self.score_references(self.primary, versions[self.primary])
        c = self.score_references(self.canary, versions[self.canary])
        if p is None or c is None:
            return
        qp = p.quantile_of(valid[self.primary])
        qc = c.quantile_of(valid[self.canary])
        pair.mapped += 1
        pair.rank_gap_ppm += round(abs(qp - qc) * 1_000_000)
        pair.primary_q.add(qp)
        pair.canary_q.add(qc)

    def observe_input(self, event: InputEvent, record_ts_ms: float) -> bool:
        """Count an input's features into its window; False when they do not fit the model."""
        if self.reference is None:
            return False
        ws = self._window(event.ts if event.ts is not None else record_ts_ms)
        if ws is None:
            return True
        drift: DriftWindow = self._agg("drift", "all", ws)
        row = feature_row(event, self.reference.schema)
        if not isinstance(row, list):
            drift.unfit += 1
            return False
        self.reference.observe(drift, row)
        return True

    def observe_feedback(self, feedback: Feedback, record_ts_ms: float) -> None:
        found = self.decided.pop(feedback.id, None)
        if found is None:  # the label came first: keep it until its decision arrives
            self.labels[feedback.id] = (feedback.label,
                                        window_start(record_ts_ms, self.window_ms))
            self._dirty.add(f"l|{feedback.id}")
            return
        self._unsaved.pop(feedback.id, None)
        self._join(found[0], found[1], feedback.label)

    def _join(self, ws: int, answers: Joined, label: Label | float) -> None:
        """Count each subject's answer against the true ``label``, as its task compares."""
        truth = label_key(label)
        for subject, answer in answers.items():
            fb: FeedbackWindow = self._agg("feedback", subject, ws)
            if not isinstance(answer, float | int):  # (score, label): a multiclass answer
                fb.add_class(label_key(answer[1]), truth)
                continue
            info = self.subject_info(subject)
            if info.task == "binary":
                fb.add_binary(answer, truth, *info.binary_classes)
            elif info.task == "regression":
                value = as_number(label)
                if value is None:
                    fb.add_unfit()
                else:
                    fb.add_value(answer, value)
            else:  # a multiclass answer without its label (a decision of an older serve)
                fb.add_unfit()

    # -- persistence -------------------------------------------------------

    def take_changes(self) -> list[tuple[str, bytes | None]]:
        """Every key changed since the last call, with its bytes (None = deleted)."""
        changes: list[tuple[str, bytes | None]] = []
        for key in self._dirty - self._deleted:
            value = self._encode(key)
            if value is not None:
                changes.append((key, value))
        waiting = list(self._unsaved.items())
        for first in range(0, len(waiting), CHUNK_DECISIONS):
            chunk = dict(waiting[first:first + CHUNK_DECISIONS])
            newest = max(ws for ws, _ in chunk.values())
            key = f"d|{newest}|{next(self._chunk_names)}"
            changes.append((key, msgspec.msgpack.encode(chunk)))
            self._chunks[key] = newest
        self._unsaved = {}
        changes.extend((key, None) for key in self._deleted)
        self._dirty.clear()
        self._deleted.clear()
        return changes

    def _encode(self, key: str) -> bytes | None:
        tag, _, rest = key.partition("|")
        if tag == "w":
            agg = self.aggs.get(key)
            return agg.to_bytes() if agg is not None else None
        if tag == "l" and rest in self.labels:
            return msgspec.msgpack.encode(self.labels[rest])
        if tag == "a":
            return b"1" if key in self.alerted else None
        return None

    def load(self, key: str, value: bytes) -> None:
        """Restore one persisted key (as produced by :meth:`take_changes`)."""
        tag, _, rest = key.partition("|")
        if tag == "w":
            kind, _subject, ws = rest.split("|")
            agg = self.aggs[key] = KINDS[kind].from_bytes(value)
            if isinstance(agg, DriftWindow) and self.reference is not None:
                self.reference.fit(agg)
            self.newest_ms = max(self.newest_ms, int(ws))
        elif tag == "d":
            for rid, (ws, scores) in msgspec.msgpack.decode(value).items():
                self.decided[rid] = (int(ws), dict(scores))
            self._chunks[key] = int(rest.split("|", 1)[0])
        elif tag == "r":  # one decision per key (older changelogs): into the next chunk
            ws, scores = msgspec.msgpack.decode(value)
            self.decided[rest] = self._unsaved[rest] = (int(ws), dict(scores))
            self._deleted.add(key)
        elif tag == "l":
            label, ws = msgspec.msgpack.decode(value)
            self.labels[rest] = (label, int(ws))
        elif tag == "a":
            self.alerted.add(key)

    # -- windows -----------------------------------------------------------

    def window_starts(self) -> list[int]:
        return sorted({int(k.rsplit("|", 1)[1]) for k in self.aggs}, reverse=True)

    def window_view(self, ws: int, now_ms: float) -> dict[str, Any]:
        """Everything known about the window starting at ``ws``, JSON-ready (NaN = no data)."""
        view: dict[str, Any] = {"start": ws, "end": ws + self.window_ms,
                                "closed": now_ms >= ws + self.window_ms + self.grace_ms,
                                "models": {}}
        models: dict[str, dict[str, Any]] = defaultdict(dict)
        for key, agg in self.aggs.items():
            _w, kind, subject, start = key.split("|")
            if int(start) != ws:
                continue
            if isinstance(agg, ModelWindow):
                models[subject].update(agg.view())
            elif isinstance(agg, FeedbackWindow):
                models[subject]["feedback"] = agg.view()
            elif isinstance(agg, PairWindow):
                view["pair"] = {**agg.view(), "primary": self.primary, "canary": self.canary,
                                "task": self.subject_info(self.primary).task}
            elif isinstance(agg, DecisionWindow):
                view["decisions"] = agg.view()
            elif isinstance(agg, DriftWindow) and self.reference is not None:
                drift = view["drift"] = {"inputs": agg.inputs, "unfit": agg.unfit,
                                         "psi": self.reference.psi(agg)}
                unseen = self.reference.unseen(agg)
                if unseen:  # string features: inputs of a category the manifest never saw
                    drift["unseen"] = unseen
                    drift["unseen_examples"] = {k: list(v)
                                                for k, v in agg.unseen_examples.items()}
        for name, fields in models.items():
            view["models"][name] = {**_EMPTY_MODEL, **fields,
                                    "task": self.subject_info(name).task}
        return view

    def close_due(self, now_ms: float) -> list[alerts.Alert]:
        """Close the windows whose end (plus grace) has passed; their alerts not sent before.

        The caller sends each alert, then calls :meth:`mark_alerted`. Windows
        older than ``keep_windows`` and joins older than ``join_ttl_s`` are dropped.
        """
        self.newest_ms = max(self.newest_ms, window_start(now_ms, self.window_ms))
        found = []
        for ws in self.window_starts():
            if ws in self.closed or now_ms < ws + self.window_ms + self.grace_ms:
                continue
            self.closed.add(ws)
            for alert in alerts.evaluate(self.window_view(ws, now_ms), self.thresholds):
                if alert.dedupe_key not in self.alerted:
                    found.append(alert)
        self._expire(now_ms)
        return found

    def mark_alerted(self, alert: alerts.Alert) -> None:
        self.alerted.add(alert.dedupe_key)
        self._dirty.add(alert.dedupe_key)

    def _expire(self, now_ms: float) -> None:
        horizon = window_start(now_ms, self.window_ms) - self.keep_ms
        for key in [k for k in self.aggs if int(k.rsplit("|", 1)[1]) < horizon]:
            del self.aggs[key]
            self._deleted.add(key)
        for key in [k for k in self.alerted if int(k.split("|")[1]) < horizon]:
            self.alerted.discard(key)
            self._deleted.add(key)
        self.closed = {ws for ws in self.closed if ws >= horizon}
        join_horizon = now_ms - self.join_ttl_ms
        # decided: id -> (window, ...); labels: id -> (label, window of arrival)
        _expired(self.decided, join_horizon, lambda entry: entry[0])
        _expired(self._unsaved, join_horizon, lambda entry: entry[0])
        for key in [k for k, newest in self._chunks.items() if newest < join_horizon]:
            del self._chunks[key]
            self._deleted.add(key)
        for rid in _expired(self.labels, join_horizon, lambda entry: entry[1]):
            self._deleted.add(f"l|{rid}")


def _expired(joins: dict[str, Any], horizon: float, window_of: Any) -> list[str]:
    """Remove and return the ids whose window is older than ``horizon``, from the front.

    A dict keeps insertion order and ids are inserted as their records arrive, i.e.
    about in window order: expiry stops at the first id still young instead of
    scanning every pending join each tick (at 2,000 decisions/s and a 600 s TTL,
    a million of them, four times a second). An id inserted out of order expires
    with the first younger one after it, late by at most that disorder.
    """
    gone = []
    for rid, entry in joins.items():
        if window_of(entry) >= horizon:
            break
        gone.append(rid)
    for rid in gone:
        del joins[rid]
    return gone


_EMPTY_MODEL: dict[str, Any] = ModelWindow().view()
