"""The faust-streaming app of the monitor: it wires topics to :class:`MonitorState`.

The input and decisions topics (two records per request; each decision carries
every model's answer, so the scores topic is not read at all) are read in
batches by a :class:`~rendezvous.monitor.bulk.BulkReader`, the feedback topic by
a faust agent; both decode through :mod:`rendezvous.messages`. A timer closes
windows, sends alerts, persists changed keys to a faust table, whose changelog
topic faust creates and replays on start, so windows survive a restart, and
only then commits what the bulk reader read. Each key always goes to the same
changelog partition (a hash of the key), because one window gathers records
from every input partition and faust's default (the partition of the current
record) would scatter a key's versions.

Run one monitor per pipeline: the windows are whole only when one process
reads every partition (it is off the latency-critical path; ``--sample``
keeps it up with the stream).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from pathlib import Path
from typing import Any

import faust
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from rendezvous import messages
from rendezvous.monitor import exposition, http
from rendezvous.monitor.bulk import BulkReader
from rendezvous.monitor.drift import DriftReference
from rendezvous.monitor.errors import MonitorError
from rendezvous.monitor.fetching import QuietSensor, fetch_in_bulk
from rendezvous.monitor.open_alerts import open_alerts
from rendezvous.monitor.pipeline import PipelineView
from rendezvous.monitor.sessions import Sessions
from rendezvous.monitor.state import MonitorState, manifests, score_references
from rendezvous.process import CpuBudget, yield_cpu
from rendezvous.readiness import announce_ready
from rendezvous.settings import Settings
from rendezvous.transport.bad_records import BadRecords, topic_of, where
from rendezvous.transport.connect import kafka_config

log = logging.getLogger(__name__)

SOURCES = ("input", "decisions", "feedback")
BULK = ("input", "decisions")
"""Read by the bulk reader; the rest of ``SOURCES`` (a trickle) by the faust agent."""
SLICE = 256
"""Records counted between two looks at the CPU budget."""
PUBLISH_S = 1.0
"""How often ``/windows`` and the window gauges are recomputed (the tick runs more often:
it closes windows, sends alerts and persists changes)."""


def faust_datadir(settings: Settings, app: str) -> Path:
    """The data directory of faust app ``app``, created: under the state directory
    (faust's default is the working directory, and it does not create it)."""
    path = settings.state_dir / app / settings.group(app)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sampled(request_id: str, ratio: float) -> bool:
    """Whether a request is aggregated: by a hash of its id, so its input, scores,
    decision and label are all kept or all skipped."""
    return ratio >= 1.0 or zlib.crc32(request_id.encode()) < ratio * 2**32


class Monitor:
    """The faust app, its table, and the state it persists there."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.options = options = settings.monitor
        self.bad_records = BadRecords("monitor")
        reference = DriftReference.load(settings.models_dir, options.reference_model)
        found = manifests(settings.models_dir)  # each model version's task, classes, scale
        self.state = MonitorState(options.window_s, reference, options.primary, options.canary,
                                  options.grace_s, options.keep_windows, options.join_ttl_s,
                                  options.thresholds, score_references(found), found)
        self.partitions = _min_partitions(settings, [settings.topic(t) for t in SOURCES])
        self.app = faust.App(
            settings.group("monitor"), broker=f"kafka://{settings.kafka_bootstrap()}",
            store="memory://", web_enabled=False, topic_partitions=self.partitions,
            datadir=str(faust_datadir(settings, "monitor")),  # not the working directory
            topic_replication_factor=options.replication_factor,
            broker_credentials=_credentials(settings), consumer_auto_offset_reset="earliest",
            # faust's 60 s default keeps a crashed monitor's partitions that long after a restart
            broker_session_timeout=10.0, broker_heartbeat_interval=1.0,
        )
        self.app.monitor = QuietSensor()
        self.topics = {settings.topic(t): t for t in SOURCES}
        self.source = self.app.topic(*(settings.topic(t) for t in SOURCES if t not in BULK),
                                     key_serializer="raw", value_serializer="raw")
        self.alerts_topic = self.app.topic(settings.topic("alerts"), key_serializer="raw",
                                           value_serializer="raw")
        self.table = self.app.Table("monitor_state", partitions=self.partitions,
                                    key_type=bytes, value_type=bytes, default=None)
        self.published = http.Published()
        self.pipeline = PipelineView(settings, every_s=options.window_s)
        self.offsets: dict[Any, int] = {}
        self.reader: BulkReader | None = None  # from the moment the table is recovered
        self.counting = False  # a batch of the bulk reader is being counted
        self.loaded = False
        self._publish_at = 0.0
        # each topic's counters, looked up once (per record, the lookup cost more than the count)
        self._records, self._processed, self._invalid = (
            {kind: counter.labels(kind) for kind in SOURCES}
            for counter in (exposition.RECORDS, exposition.PROCESSED, exposition.INVALID))
        self.app.agent(self.source, name="monitor")(self._consume)
        self.app.task(self._read_in_bulk)
        self.app.timer(min(options.flush_s, options.window_s / 4), name="monitor_tick")(self._tick)
        self.table.on_recover(self._recovered)
        self.app.on_before_shutdown.connect(self._on_shutdown)
        exposition.SAMPLE_RATIO.set(options.sample)

    async def _consume(self, stream: Any) -> None:
        budget = CpuBudget(self.options.max_cpu)
        async for event in stream.events():
            pause = budget.pause_s()
            if pause:
                await asyncio.sleep(pause)
            message = event.message
            self.offsets[message.tp] = message.offset
            kind = self.topics[message.topic]
            invalid = self.handle(kind, event.value, message.timestamp * 1000)
            if invalid:
                self.bad_records.skip(
                    kind, f"{message.topic}/{message.partition}/{message.offset}", invalid)

    async def _read_in_bulk(self) -> None:
        while not self.loaded:  # counting into windows the changelog is about to replace
            await asyncio.sleep(0.05)
        reader = self.reader = BulkReader(self.settings, self.settings.group("monitor-bulk"),
                                          (self.settings.topic(t) for t in BULK))
        budget = CpuBudget(self.options.max_cpu, every=1)
        handle, kinds, skip = self.handle, self.topics, self.bad_records.skip
        async for records in reader.batches():
            # In slices with the budget's pause between them: a second's batch counted in
            # one go would hold a core for ~100 ms, and the hot path shares two. The tick
            # waits for the whole batch: a window is judged, and offsets committed, only
            # with every record fetched so far counted.
            self.counting = True
            for first in range(0, len(records), SLICE):
                if first:
                    await self._within_budget(budget)
                started = time.perf_counter()
                for record in records[first:first + SLICE]:
                    kind = kinds[topic_of(record)]
                    invalid = handle(kind, record.value(), record.timestamp()[1])
                    if invalid:
                        skip(kind, where(record), invalid)
                exposition.BATCH_LATENCY.observe(time.perf_counter() - started)
            self.counting = False
            await self._within_budget(budget)

    @staticmethod
    async def _within_budget(budget: CpuBudget) -> None:
        pause = budget.pause_s()
        if pause:
            await asyncio.sleep(pause)

    def handle(self, kind: str, value: bytes | None, record_ts_ms: float) -> str | None:
        """Decode one record of topic ``kind`` and count it into the state; returns why
        the record was skipped when it is not a valid message (invalid inputs are counted,
        not skipped: they are the rendezvous' to dead-letter)."""
        self._records[kind].inc()
        try:
            decoded = _decode(kind, value)
        except messages.Undecodable as exc:
            decoded = messages.Invalid(str(exc))
        if isinstance(decoded, messages.Invalid):
            self._invalid[kind].inc()
            return None if kind == "input" else decoded.reason
        if not sampled(decoded.id, self.options.sample):
            return None
        if isinstance(decoded, messages.InputEvent):
            fits = self.state.observe_input(decoded, record_ts_ms)
            if not fits:
                self._invalid[kind].inc()
        elif isinstance(decoded, messages.Decision):
            self.state.observe_decision(decoded)
        else:
            self.state.observe_feedback(decoded, record_ts_ms)
        self._processed[kind].inc()
        return None

    async def _recovered(self) -> None:
        if self.loaded:  # a later rebalance: this process already holds the newer state
            return
        for key, value in list(self.table.data.items()):
            if value is not None:
                self.state.load(key.decode(), value)
        self.loaded = True
        self._publish()
        host = self.settings.metrics_host
        self.pipeline.start()
        server = http.serve(self.published, self.settings.metrics_port or 0, host,
                            Sessions(api_keys(self.settings)))
        port = server.server_address[1]
        log.info("monitor on http://%s:%d/ (the page), /metrics and /windows", host, port)
        announce_ready("monitor", f"port={port}")

    async def _tick(self) -> None:
        if not self.loaded or self.counting:
            return
        for alert in self.state.close_due(time.time() * 1000):
            # Sent and acknowledged before it is marked, so a crash re-sends rather than loses it.
            await self.alerts_topic.send(key=alert.dedupe_key.encode(),
                                         value=messages.encode(alert))
            await self.app.producer.flush()
            exposition.ALERTS.labels(alert.cause).inc()
            log.warning("alert: %s", alert)
            self.state.mark_alerted(alert)
        await self._persist()
        now = time.monotonic()
        if now >= self._publish_at:  # the views' quantiles cost CPU; readers scrape seconds apart
            self._publish_at = now + PUBLISH_S
            self._publish()
            self._update_lag()

    async def _persist(self) -> None:
        """Flush the changes, and once the changelog has them, commit what the bulk reader
        read (a crash then re-reads rather than loses)."""
        reader = self.reader
        read = reader.offsets() if reader is not None else {}
        if self.flush() and read:
            await self.app.producer.flush()
        if reader is not None:
            reader.commit(read)

    def flush(self) -> bool:
        """Write every changed key to the table and its changelog; whether any changed."""
        changed = False
        for key, value in self.state.take_changes():
            raw = key.encode()
            if value is None:
                self.table.data.pop(raw, None)
            else:
                self.table.data[raw] = value
            self.table.send_changelog(zlib.crc32(raw) % self.partitions, raw, value)
            changed = True
        return changed

    async def _on_shutdown(self, app: Any, /, *_: Any, signal: Any, **__: Any) -> None:
        self.pipeline.stop()
        if not self.loaded:
            return
        reader = self.reader
        if reader is not None:
            reader.stop()  # its last batch may still come in: flushed below, or re-read
        self.flush()
        await self.app.producer.flush()
        if reader is not None:
            reader.close(reader.offsets())

    def _publish(self) -> None:
        now = time.time() * 1000
        views = [self.state.window_view(ws, now) for ws in self.state.window_starts()]
        closed = [v for v in views if v["closed"]]
        exposition.WINDOWS.view = closed[0] if closed else None
        pipeline = exposition.PIPELINE.view = self.pipeline.view
        thresholds = self.options.thresholds
        self.published.windows = exposition.windows_json(
            views, self.options.sample, window_s=self.options.window_s,
            thresholds=thresholds.model_dump(), open_alerts=open_alerts(views, thresholds),
            pipeline=pipeline)

    def _update_lag(self) -> None:
        lag: dict[str, int] = {}
        for tp, offset in self.offsets.items():
            try:
                high = self.app.consumer.highwater(tp)
            except Exception:  # not known yet for this partition
                continue
            if high is not None:
                kind = self.topics.get(tp.topic, tp.topic)
                lag[kind] = lag.get(kind, 0) + max(high - offset - 1, 0)
        if self.reader is not None:
            for topic, behind in self.reader.lag().items():
                lag[self.topics[topic]] = behind
        for kind, value in lag.items():
            exposition.LAG.labels(kind).set(value)


def api_keys(settings: Settings) -> list[SecretStr]:
    """The keys the monitor's HTTP endpoint asks for: the monitor's own when settings have
    them (``monitor.api_keys``), else the gateway's (one set of keys for the deployment's
    HTTP); none: open, as it binds to loopback by default."""
    own = getattr(settings.monitor, "api_keys", None)
    return list(own or settings.gateway.api_keys)


def _decode(kind: str, value: bytes | None) -> Any:
    if kind == "input":
        return messages.decode_input(value)
    if not value:
        return messages.Invalid("empty record")
    decoder = {"decisions": messages.decode_decision,
               "feedback": messages.decode_feedback}[kind]
    return decoder(value)


def _min_partitions(settings: Settings, topics: list[str]) -> int:
    """The smallest partition count among ``topics`` (the changelog gets as many)."""
    metadata = AdminClient(kafka_config(settings)).list_topics(timeout=15)
    missing = [t for t in topics if t not in metadata.topics or metadata.topics[t].error]
    if missing:
        raise MonitorError(f"topics missing: {missing}; run `rendezvous topics apply`")
    return min(len(metadata.topics[t].partitions) for t in topics)


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    if kafka.security_protocol == "PLAINTEXT":
        return None
    import ssl

    context = ssl.create_default_context(cafile=kafka.ssl_ca_location)
    if kafka.ssl_certificate_location:
        context.load_cert_chain(kafka.ssl_certificate_location, kafka.ssl_key_location)
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        return faust.SASLCredentials(
            username=kafka.sasl_username, password=password, mechanism=kafka.sasl_mechanism,
            ssl_context=context if kafka.security_protocol == "SASL_SSL" else None)
    return faust.SSLCredentials(context)


def run(settings: Settings) -> None:
    """Run the monitor (``settings.monitor``) until SIGTERM/SIGINT (faust's worker drains
    and stops)."""
    yield_cpu(settings.monitor.niceness)
    fetch_in_bulk(settings.monitor.fetch_min_bytes)
    monitor = Monitor(settings)
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    # override_logging=False: keep the one log format the CLI set up (rendezvous.logs).
    worker = faust.Worker(monitor.app, loglevel=level, quiet=True, redirect_stdouts=False,
                          override_logging=False)
    worker.execute_from_commandline()
