"""``Embedded``: the rendezvous inside a Python application; no broker needed.

One call is one request (``score``) or many (``score_batch``): every configured model scores
the call's rows at once on a thread pool (ONNX Runtime releases the GIL), and serve's core
decides each row (:mod:`rendezvous.embedded.decider`): the same policy, validity rules,
quantile mapping, fallback and timeout as the Kafka deployment, and the same
:class:`~rendezvous.messages.Scored` result. A call returns by its deadline: it never
waits for a model past it, and a model still busy with ``max_in_flight`` earlier calls does
not answer it (:mod:`rendezvous.embedded.lanes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from rendezvous.core import PolicyError
from rendezvous.embedded import models as model_loading
from rendezvous.embedded.decider import Call, Decider
from rendezvous.embedded.errors import ClosedError, EmbeddedError
from rendezvous.embedded.features import FeaturesLike, to_matrix, to_row
from rendezvous.embedded.lanes import Lane
from rendezvous.embedded.policies import PolicyLike, to_policy
from rendezvous.messages import (
    DEADLINE_BOUNDS,
    Decision,
    FeatureSchema,
    FeatureValue,
    Policy,
    Score,
    Scored,
)
from rendezvous.worker.answers import failures

if TYPE_CHECKING:
    from rendezvous.embedded.archiving import Archiver
    from rendezvous.embedded.kafka import PolicyFollower, Publisher
    from rendezvous.embedded.registry import ModelFollower
    from rendezvous.settings import Settings

DEFAULT_MAX_IN_FLIGHT = 8
"""Calls one model may run at once before it counts as not answering (``busy``): at least
as many as the application's threads that call at once, or those beyond it get fallbacks."""


def epoch_ms() -> float:
    return time.time() * 1000.0


@dataclass(frozen=True)
class ModelStats:
    """One model's counters."""

    name: str
    version: str
    in_flight: int
    busy: int
    """Calls it did not answer: it was still running ``max_in_flight`` earlier calls."""
    failed: int
    """Calls on which it raised."""


@dataclass(frozen=True)
class EmbeddedStats:
    """Counters since the ``Embedded`` was built (a snapshot)."""

    calls: int
    rows: int
    decided: int
    late: int
    """Model answers that came after their row was decided (its caller had its result)."""
    models: list[ModelStats]
    archived: int = 0
    """Rows (inputs and decisions) written to the archive."""
    archive_dropped: int = 0
    """Rows not archived: the archive's queue was full (``score`` never waits for it)."""
    published: int = 0
    """Decisions delivered to the deployment's ``decisions`` topic."""
    publish_dropped: int = 0
    """Decisions not published: the queue was full, or the broker did not take them."""


class Embedded:
    """The rendezvous in process: ``score(features)`` -> :class:`~rendezvous.messages.Scored`.

    ``models_dir``: ``<name>/<version>/model.onnx`` + ``model.yaml`` (default: the bundled
    models). ``policy``: a :class:`~rendezvous.messages.Policy`, a dict of its fields or a
    YAML/JSON file (default: prefer primary, then canary, 50 ms). ``models``: more models
    to run (recorded in each decision, never chosen unless preferred), ``{name: version}``
    to pin versions, or model objects. ``max_in_flight``: calls one model may run at once;
    a call that finds it busy with that many gets no answer from it (it falls back at
    once). ``archive``: a directory to record every input and decision in the decoy's
    Parquet layout, off the latency path (``archive_queue`` rows at most waiting; beyond,
    dropped and counted). ``kafka``: a deployment (bootstrap servers, or its Settings) whose
    ``decisions`` topic gets every decision (``publish``; never ``input``), whose live
    policy from the control topic replaces ``policy`` (``follow_policy``) and whose model
    registry swaps the versions of the models loaded from ``models_dir``
    (``follow_models``). Thread-safe; close it (or use ``with``) to stop its threads.
    """

    def __init__(self, models_dir: str | Path | None = None, policy: PolicyLike = None, *,
                 models: model_loading.ModelsLike = None,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 archive: str | Path | None = None, archive_queue: int = 65_536,
                 archive_roll_s: float = 10.0, kafka: Settings | str | None = None,
                 publish: bool = True, follow_policy: bool = True,
                 follow_models: bool = True) -> None:
        if max_in_flight < 1:
            raise EmbeddedError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.models_dir = Path(models_dir) if models_dir is not None else model_loading.BUNDLED
        start = to_policy(policy)
        chosen = model_loading.wanted(start, models)
        loaded = model_loading.load(self.models_dir, chosen)
        pinned = {name for name, version in chosen.items() if isinstance(version, str)}
        self._lanes = [Lane(m, max_in_flight) for m in loaded]
        self._by_name = {lane.model.name: lane for lane in self._lanes}
        self._check_served(start)
        self._decider = Decider(start, epoch_ms, model_loading.scales(self.models_dir))
        self._pool = ThreadPoolExecutor(max_workers=max_in_flight * len(self._lanes),
                                        thread_name_prefix="rendezvous-embedded")
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count()
        self._count_lock = threading.Lock()
        self._n_calls = 0
        self._rows = 0
        self._closed = False
        self._archiver: Archiver | None = None
        if archive is not None:
            from rendezvous.embedded.archiving import Archiver

            self._archiver = Archiver(Path(archive), archive_queue, archive_roll_s)
        self._publisher: Publisher | None = None
        self._follower: PolicyFollower | None = None
        self._models_follower: ModelFollower | None = None
        if kafka is not None:
            self._link(kafka, publish, follow_policy, follow_models, archive_queue, pinned)

    @property
    def policy(self) -> Policy:
        """The policy new calls are decided by."""
        return self._decider.policy

    def set_policy(self, policy: PolicyLike) -> None:
        """Decide calls made from now on by ``policy`` (calls under way keep theirs)."""
        new = to_policy(policy)
        self._check_served(new)
        try:
            self._decider.set_policy(new)
        except PolicyError as exc:
            raise EmbeddedError(f"bad policy: {exc}") from None

    def score(self, features: FeaturesLike, deadline_ms: float | None = None,
              id: str | None = None) -> Scored:  # noqa: A002 - the contract's field name
        """Score one request: its features by name or in the model's order. Returns by the
        deadline (``deadline_ms`` from now; default the policy's) with the policy's choice:
        ``ok``, ``fallback``, ``timeout`` or ``rejected`` (features that do not fit)."""
        call = self._start([features], deadline_ms, None if id is None else [id])
        return self._wait(call)[0]

    def explain(self, features: FeaturesLike, deadline_ms: float | None = None,
                id: str | None = None) -> tuple[Scored, Decision]:  # noqa: A002
        """:meth:`score`, with the decision record serve writes on the ``decisions`` topic:
        every model's answer (valid or not, and why), latency and the choice."""
        call = self._start([features], deadline_ms, None if id is None else [id])
        result = self._wait(call)[0]
        decision = call.decisions[0]
        assert decision is not None  # every decided row has its record
        return result, msgspec.structs.replace(decision, id=result.id)

    def score_batch(self, rows: Sequence[FeaturesLike], deadline_ms: float | None = None,
                    ids: Sequence[str] | None = None) -> list[Scored]:
        """Score many requests in one call (one model run per model for all of them), all
        due by the same deadline; results in the order of ``rows``."""
        if not rows:
            return []
        call = self._start(rows, deadline_ms, ids)
        return self._wait(call)

    async def ascore(self, features: FeaturesLike, deadline_ms: float | None = None,
                     id: str | None = None) -> Scored:  # noqa: A002
        """:meth:`score` for asyncio: the event loop is free while the models run."""
        return (await self.ascore_batch([features], deadline_ms, None if id is None else [id]))[0]

    async def ascore_batch(self, rows: Sequence[FeaturesLike], deadline_ms: float | None = None,
                           ids: Sequence[str] | None = None) -> list[Scored]:
        """:meth:`score_batch` for asyncio."""
        if not rows:
            return []
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            # The loop may be gone by then (a cancelled task's loop closed): nothing to wake.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, woken)

        call = self._start(rows, deadline_ms, ids, wake)
        try:
            while not call.done.is_set():
                left = call.deadline_at - epoch_ms()
                if left <= 0:
                    self._decider.tick()
                    if not call.done.is_set():
                        await asyncio.sleep(0.0005)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(woken), left / 1000.0)
        finally:
            call.notify = None  # cancelled: the call is decided later, nobody to wake
        return self._finish(call)

    def stats(self) -> EmbeddedStats:
        """The counters now."""
        core = self._decider.stats()
        archiver = self._archiver
        with self._count_lock:
            calls, rows = self._n_calls, self._rows
        return EmbeddedStats(
            calls=calls, rows=rows, decided=core.decided, late=core.late,
            models=[ModelStats(lane.model.name, lane.model.version, lane.in_flight, lane.busy,
                               lane.failed) for lane in self._lanes],
            archived=archiver.written if archiver else 0,
            archive_dropped=archiver.dropped if archiver else 0,
            published=self._publisher.published if self._publisher else 0,
            publish_dropped=(self._publisher.dropped + self._publisher.failed
                             if self._publisher else 0),
        )

    def close(self) -> None:
        """Stop the threads: model calls under way finish; the archive is written out."""
        if self._closed:
            return
        self._closed = True
        if self._follower is not None:
            self._follower.close()
        if self._models_follower is not None:
            self._models_follower.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._archiver is not None:
            self._archiver.close()
        if self._publisher is not None:
            self._publisher.close()

    def __enter__(self) -> Embedded:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _link(self, kafka: Settings | str, publish: bool, follow_policy: bool,
              follow_models: bool, capacity: int, pinned: set[str]) -> None:
        from rendezvous.embedded.kafka import PolicyFollower, Publisher, retrying, to_settings
        from rendezvous.embedded.registry import ModelFollower

        settings = to_settings(kafka)
        followed = [lane for lane in self._lanes if lane.model.name not in pinned]
        try:
            if publish:
                self._publisher = Publisher(settings, capacity)
            if follow_models:
                self._models_follower = retrying(
                    lambda: ModelFollower(settings, self.models_dir, followed))
            if follow_policy:
                self._follower = retrying(lambda: PolicyFollower(settings, self.set_policy))
        except Exception:
            self.close()
            raise

    def _check_served(self, policy: Policy) -> None:
        missing = [name for name in policy.prefer if name not in self._by_name]
        if missing:
            raise EmbeddedError(
                f"the policy prefers {missing}, which this Embedded does not run (it runs "
                f"{sorted(self._by_name)}); build it with models=... naming them")

    def _start(self, rows: Sequence[FeaturesLike], deadline_ms: float | None,
               ids: Sequence[str] | None, notify: Any = None) -> Call:
        if self._closed:
            raise ClosedError("this Embedded is closed: build a new one")
        n = len(rows)
        if ids is None:
            ids = [f"{self._prefix}-{next(self._ids)}" for _ in range(n)]
        elif len(ids) != n:
            raise EmbeddedError(f"{len(ids)} ids for {n} rows: give one id per row, or none")
        ts = epoch_ms()
        decider = self._decider
        policy = decider.policy
        budget = policy.deadline_ms if deadline_ms is None else _budget(deadline_ms)
        call = Call(ids, ts + budget, notify)
        with self._count_lock:
            self._n_calls += 1
            self._rows += n
        if self._archiver is not None:
            self._archiver.inputs(ids, rows, deadline_ms, ts)
        keys = decider.keys(n)
        preferred = self._by_name[policy.prefer[0]].model.schema
        checked = _rows_by_schema(rows, ids, {lane.model.schema for lane in self._lanes})
        rejected = checked[preferred][1]
        decider.open(call, keys, ts, rejected)
        for lane in self._lanes:
            fit, unfit = checked[lane.model.schema]
            picked = [i for i in fit if i not in rejected]
            if unfit:  # rows the preferred model takes and this one does not
                extra = [i for i in unfit if i not in rejected]
                if extra:
                    decider.offer(_unfit(lane, [keys[i] for i in extra], ts,
                                         [unfit[i] for i in extra]))
            if not picked:
                continue
            picked_keys = [keys[i] for i in picked]
            if not lane.try_enter():
                decider.offer(lane.refuse(picked_keys, ts))
                continue
            matrix = to_matrix([fit[i] for i in picked], lane.model.schema)
            self._track(call, lane.run(self._pool, picked_keys, matrix, ts, decider.offer))
        return call

    def _track(self, call: Call, future: Future[None]) -> None:
        # A call decided before its model started needs no model run: cancelled, the slot
        # is free at once (rare: the pool has a thread for every slot).
        call.done_hooks.append(future.cancel)

    def _wait(self, call: Call) -> list[Scored]:
        done, decider = call.done, self._decider
        while not done.is_set():
            left = call.deadline_at - epoch_ms()
            if left <= 0:
                decider.tick()
                if not done.is_set():
                    done.wait(0.0005)
                continue
            done.wait(left / 1000.0)
        return self._finish(call)

    def _finish(self, call: Call) -> list[Scored]:
        for cancel in call.done_hooks:
            cancel()
        if self._archiver is not None:
            self._archiver.decisions(call.ids, call.decisions)
        if self._publisher is not None:
            self._publisher.decisions(call.ids, call.decisions)
        return call.results  # type: ignore[return-value]  # every row is decided now


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _budget(deadline_ms: float) -> float:
    """``deadline_ms`` clamped to serve's default bounds; :class:`EmbeddedError` unless > 0."""
    if not deadline_ms > 0:
        raise EmbeddedError(f"deadline_ms must be a positive number of milliseconds, "
                            f"got {deadline_ms}")
    return min(max(float(deadline_ms), DEADLINE_BOUNDS.min_ms), DEADLINE_BOUNDS.max_ms)


def _rows_by_schema(rows: Sequence[FeaturesLike], ids: Sequence[str],
                    schemas: set[FeatureSchema]
                    ) -> dict[FeatureSchema, tuple[dict[int, list[FeatureValue]], dict[int, str]]]:
    """Per schema: the rows that fit it (index -> row) and why the others do not."""
    out = {}
    for schema in schemas:
        fit: dict[int, list[FeatureValue]] = {}
        unfit: dict[int, str] = {}
        for i, (features, rid) in enumerate(zip(rows, ids, strict=True)):
            row = to_row(features, schema, rid)
            if isinstance(row, list):
                fit[i] = row
            else:
                unfit[i] = row.reason
        out[schema] = (fit, unfit)
    return out


def _unfit(lane: Lane, keys: list[str], ts: float, reasons: list[str]) -> list[Score]:
    """The answers of a model whose features a row does not fit (the preferred model's do)."""
    return [score for key, reason in zip(keys, reasons, strict=True)
            for score in failures(lane.model, [key], ts, ts, f"input does not fit: {reason}")]

