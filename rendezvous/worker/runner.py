"""The worker's Kafka loop: poll a micro-batch, decode it, score it in one call, produce, commit.

Per batch: one decode pass (:mod:`rendezvous.worker.batch`), one
``Model.predict`` call, one produce loop writing a :class:`~rendezvous.messages.Score`
per valid input to the ``scores`` topic, on **the input record's partition
number** (co-partitioning; key = request id, but the partition is explicit so
no client's key hashing matters).

Deadlines propagate: a request whose deadline passed before it arrived is
*shed* — skipped and counted, with no record — because the
rendezvous has already answered it (fallback or timeout); writing anything for
it only adds load when the worker is already behind. Invalid input is counted
and skipped: the rendezvous answers it ``rejected``.

Offsets (at-least-once): a batch's input offsets are committed only once the
broker acknowledged every score of that batch (idempotent producer, acks=all).
Delivery is pipelined: the next batch is polled and scored while the previous
one's acknowledgements come in, and acknowledged batches are committed in order,
every ``COMMIT_INTERVAL_S`` (:class:`Pipeline`). Flushing after every batch
instead measured 2-5x slower (``bench/bench_worker.py``): each batch then waits
a broker round trip. A failed delivery stops the worker with nothing of that
batch committed, so a restart scores it again. SIGTERM/SIGINT finish the
in-flight batch, wait for its acknowledgements, commit, and return.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Message, Producer
from prometheus_client import Counter, Gauge, Histogram

from rendezvous.errors import SettingsError
from rendezvous.messages import (
    DEADLINE_BOUNDS,
    DeadlineBounds,
    FeatureSchema,
    encode,
)
from rendezvous.metrics import LagProbe, serve_metrics
from rendezvous.model import Model, ModelError, list_versions, load_model, resolve_model
from rendezvous.model.manifest import MODEL_FILE
from rendezvous.readiness import announce_ready
from rendezvous.registry.control import RegistryWatcher
from rendezvous.settings import Settings
from rendezvous.signing import ScoreSigner
from rendezvous.transport import clients as kafka
from rendezvous.transport.clients import Stopper, produce
from rendezvous.transport.relay import consume_loop
from rendezvous.worker.answers import answers, failures
from rendezvous.worker.batch import Prepared, RowBuilder
from rendezvous.worker.errors import WorkerError
from rendezvous.worker.follow import Follower, Role, refusal

log = logging.getLogger(__name__)

RECORDS = Counter("rendezvous_worker_records", "Input records consumed.", ["model"])
SCORED = Counter("rendezvous_worker_scored", "Scores produced with status ok.", ["model"])
INVALID = Counter("rendezvous_worker_invalid", "Input records that failed validation.", ["model"])
SHED = Counter("rendezvous_worker_shed", "Inputs skipped: deadline passed on arrival.", ["model"])
ERRORS = Counter("rendezvous_worker_errors", "Scores produced with status error.", ["model"])
BATCHES = Counter("rendezvous_worker_batches", "Micro-batches processed.", ["model"])
BATCH_SECONDS = Histogram(
    "rendezvous_worker_batch_seconds", "Time from poll to the batch's last produce call.",
    ["model"], buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
SERVING = Gauge("rendezvous_worker_serving", "1 for each model version this worker scores now.",
                ["model", "version", "role"])
LAG = Gauge("rendezvous_worker_lag", "Input records not consumed yet, when sampled.", ["model"])



def now_ms() -> float:
    return time.time() * 1000.0


class Scorer:
    """The worker's batch handler: decode, one predict call per version, one produce loop.

    A live worker scores one version, a shadow worker every shadow version (its scores say
    ``shadow``); :meth:`use` replaces the versions, taking effect at the next batch."""

    def __init__(self, model: Model | None, producer: Producer, topic: str,
                 default_deadline_ms: float, delay_ms: float = 0.0,
                 margin_ms: float = 0.0, *, name: str | None = None,
                 shadow: bool = False, reply_prefix: str | None = None,
                 deadlines: DeadlineBounds = DEADLINE_BOUNDS,
                 signer: ScoreSigner | None = None) -> None:
        self.producer, self.topic, self.shadow = producer, topic, shadow
        self.signer = signer  # signs each score with this model's key (serve checks it)
        self.reply_prefix, self.deadlines = reply_prefix, deadlines
        self.default_deadline_ms, self.margin_ms = default_deadline_ms, margin_ms
        self.delay_s = delay_ms / 1000.0
        self.models: list[tuple[Model, RowBuilder]] = []
        self.use([model] if model is not None else [])
        labels = {"model": name or (model.name if model is not None else "")}
        self.records, self.scored = RECORDS.labels(**labels), SCORED.labels(**labels)
        self.invalid, self.shed = INVALID.labels(**labels), SHED.labels(**labels)
        self.errors, self.batches = ERRORS.labels(**labels), BATCHES.labels(**labels)

    @property
    def model(self) -> Model | None:
        """The (first) version scored now."""
        return self.models[0][0] if self.models else None

    def use(self, models: list[Model]) -> None:
        """Score these versions from the next batch on (one row builder per feature order)."""
        builders: dict[FeatureSchema, RowBuilder] = {}
        for model, builder in self.models:
            builders[model.schema] = builder
        self.models = []
        for m in models:
            builder = builders.get(m.schema) or RowBuilder(
                m.schema, self.default_deadline_ms, self.margin_ms,
                reply_prefix=self.reply_prefix, deadlines=self.deadlines)
            builders[m.schema] = builder
            self.models.append((m, builder))

    def __call__(self, records: list[Message], on_delivery: Callable[..., None]) -> int:
        received = now_ms()
        self.records.inc(len(records))
        self.batches.inc()
        produced = 0
        prepared: dict[int, Prepared] = {}
        for i, (model, builder) in enumerate(self.models):
            batch = prepared.get(id(builder))
            if batch is None:
                batch = prepared[id(builder)] = builder.prepare(records, received)
                if i == 0:
                    self._count(batch)
            if batch.ids:
                produced += self._score(model, batch, received, on_delivery)
        return produced

    def _count(self, batch: Prepared) -> None:
        if batch.invalid:
            self.invalid.inc(len(batch.invalid))
            log.debug("%d invalid inputs, first: %s", len(batch.invalid), batch.invalid[0])
        if batch.shed:
            self.shed.inc(batch.shed)

    def _score(self, model: Model, batch: Prepared, received: float,
               on_delivery: Callable[..., None]) -> int:
        try:
            prediction = model.predict(batch.rows)
        except Exception as exc:  # ORT raises untyped errors; a failed batch is data, not a crash
            log.exception("%s/%s failed on a batch of %d", model.name, model.version,
                          len(batch.ids))
            messages = failures(model, batch.ids, received, now_ms(),
                                f"model failed: {str(exc)[:200]}", self.shadow)
        else:
            if self.delay_s:
                time.sleep(self.delay_s)
            messages = answers(model, batch.ids, prediction, received, now_ms(), self.shadow)
        ok = 0
        for message, partition in zip(messages, batch.partitions, strict=True):
            ok += message.status == "ok"
            self._produce(encode(message), message.id, partition, on_delivery)
        self.scored.inc(ok)
        if ok < len(messages):  # a bad output counts as no answer, said at once
            self.errors.inc(len(messages) - ok)
        return len(messages)

    def _produce(self, value: bytes, rid: str, partition: int,
                 on_delivery: Callable[..., None]) -> None:
        if self.signer is None:
            produce(self.producer, self.topic, value, rid, partition=partition,
                    on_delivery=on_delivery)
        else:
            produce(self.producer, self.topic, value, rid, partition=partition,
                    on_delivery=on_delivery, headers=self.signer.headers(value))


def _signer(settings: Settings) -> ScoreSigner | None:
    key = settings.worker.score_key
    if key is None:
        return None
    try:
        return ScoreSigner(key.get_secret_value())
    except ValueError as exc:
        raise SettingsError(f"RENDEZVOUS_WORKER__SCORE_KEY: {exc}") from None


def load(settings: Settings, model_name: str, version: str | None = None,
         sha256: str | None = None) -> Model:
    """The verified model, or a :class:`WorkerError` saying what exists / what is wrong.

    With ``sha256`` (the registry's digest of that version), a ``model.onnx`` of other
    bytes is refused before ONNX Runtime parses it, whatever its manifest says."""
    try:
        path = resolve_model(settings.models_dir, model_name, version)
        if sha256 is not None:
            found = _file_digest(path / MODEL_FILE)
            if found is not None and found != sha256:
                raise WorkerError(refusal(model_name, path.name, found, sha256,
                                          str(path / MODEL_FILE)))
        model = load_model(path)
    except ModelError as exc:
        raise WorkerError(str(exc)) from exc
    if sha256 is not None and model.manifest.sha256 != sha256:  # replaced in between
        raise WorkerError(refusal(model_name, model.version, model.manifest.sha256, sha256,
                                  str(path / MODEL_FILE)))
    return model


def _file_digest(path: Path) -> str | None:
    """Hex sha256 of the file (None if it cannot be read: load_model says why)."""
    try:
        with path.open("rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def run(settings: Settings, model_name: str, *, version: str | None = None,
        role: Role = "live", max_batch: int = 512, max_wait_ms: float = 2.0,
        delay_ms: float = 0.0, metrics_port: int | None = None, instance: str | None = None,
        stopper: Stopper | None = None) -> None:
    """Serve ``model_name`` until SIGTERM/SIGINT (or ``stopper``); returns after draining.

    With ``version`` the worker serves that version only; otherwise it follows the model
    registry on the control topic: the live version (``role="live"``) or every shadow
    version (``role="shadow"``, its own consumer group), swapped between two batches."""
    if role == "shadow" and version is not None:
        raise WorkerError("a shadow worker follows the registry's shadow versions; "
                          "drop --version (or run a live worker pinned to it)")
    follower: Follower | None = None
    what = f"the {role} worker of {model_name}"
    # A topic this principal may not use is fatal now, naming the topic and the principal.
    kafka.check_access(settings, reads=[settings.topic("input")],
                       writes=[settings.topic("scores")], what=what)
    if version is not None:
        models = [load(settings, model_name, version)]
    else:
        versions = list_versions(settings.models_dir, model_name)
        if not versions:
            load(settings, model_name)  # raises, saying which models exist
        watcher = RegistryWatcher(settings, name=f"registry-{model_name}", needed_by=what)
        follower = Follower(watcher, model_name, role,
                            lambda v: load(settings, model_name, v,
                                           watcher.digest(model_name, v)),
                            versions[-1])
        models = follower.initial()
    if metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": metrics_port})
    port = serve_metrics(settings)
    stopper = stopper or Stopper()
    group = settings.group(f"worker-{model_name}" + ("-shadow" if role == "shadow" else ""))
    extra = {"group.instance.id": f"{group}-{instance}"} if instance else {}
    consumer = kafka.make_consumer(settings, group, **extra)
    producer = kafka.make_producer(settings)
    scorer = Scorer(None, producer, settings.topic("scores"), settings.default_deadline_ms,
                    delay_ms, margin_ms=settings.serve.margin_min_ms, name=model_name,
                    shadow=role == "shadow", reply_prefix=settings.topic_prefix,
                    deadlines=DeadlineBounds(settings.serve.min_deadline_ms,
                                             settings.serve.max_deadline_ms),
                    signer=_signer(settings))
    scorer.use(models)
    batch_seconds = BATCH_SECONDS.labels(model=model_name)
    lag = LagProbe(consumer, LAG.labels(model=model_name))

    def in_use() -> str:
        return ",".join(m.version for m, _ in scorer.models) or "none"

    def show_serving(before: list[str]) -> None:
        for v in before:
            SERVING.remove(model_name, v, role)
        for m, _ in scorer.models:
            SERVING.labels(model_name, m.version, role).set(1)

    show_serving([])

    def ready() -> None:
        announce_ready("worker", f"model={model_name} version={in_use()} role={role} "
                                 f"metrics={port if port is not None else 'off'}")

    def observe(records: list[Message], seconds: float) -> None:
        if records:
            batch_seconds.observe(seconds)
        lag.maybe_update()
        if follower is not None:
            follower.check()
            swapped = follower.take()
            if swapped is not None:  # between two batches: the next one is scored by these
                before = in_use()
                old = [m.version for m, _ in scorer.models]
                scorer.use(swapped)
                show_serving(old)
                log.warning("%s worker of %s swapped versions %s -> %s", role, model_name,
                            before, in_use())

    log.info("%s worker %s/%s on %s (group %s, batch <= %d, wait <= %g ms, delay %g ms)",
             role, model_name, in_use(), settings.topic("input"), group, max_batch,
             max_wait_ms, delay_ms)
    try:
        consume_loop(consumer, producer, settings.topic("input"), scorer, max_batch=max_batch,
                     max_wait_s=max_wait_ms / 1000.0, stopper=stopper, on_first_assign=ready,
                     on_poll=observe)
    finally:
        if follower is not None:
            follower.watcher.close()
    log.info("worker %s stopped after draining", model_name)
