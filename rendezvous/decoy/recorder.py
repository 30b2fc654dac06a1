"""The decoy's consumer loop: poll, buffer, roll files, and only then commit.

At-least-once by construction: an offset is committed only after the file
holding its record is durable, so a crash at any point loses nothing; what was
written but not committed is written again after a restart (the reader
deduplicates).

A full disk (ENOSPC, EDQUOT) is not a crash: the decoy logs one error, keeps what it
has buffered, commits nothing, pauses its partitions (so memory stays bounded) and
retries the roll every ``DISK_RETRY_S``; once a roll succeeds it commits and resumes.
"""

from __future__ import annotations

import errno
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import Counter, Gauge, Histogram

from rendezvous.archive.layout import HOUR_MS
from rendezvous.archive.retention import prune
from rendezvous.decoy.batches import payload_bytes, to_batches
from rendezvous.decoy.errors import DecoyError
from rendezvous.decoy.redaction import Redactor
from rendezvous.decoy.writer import ArchiveWriter
from rendezvous.metrics import BATCH_BUCKETS, LagProbe, serve_metrics
from rendezvous.process import CpuBudget, yield_cpu
from rendezvous.readiness import announce_ready
from rendezvous.settings import DecoySettings, Settings
from rendezvous.transport.bad_records import SKIPPED
from rendezvous.transport.clients import Stopper, make_consumer, poll_batch

log = logging.getLogger(__name__)

RECORDS = Counter("rendezvous_decoy_records", "Records archived (durable)", ["topic"])
BYTES = Counter("rendezvous_decoy_bytes", "Key and value bytes archived (durable)", ["topic"])
FILES = Counter("rendezvous_decoy_files", "Archive files written", ["topic"])
BUFFERED = Gauge("rendezvous_decoy_buffered_records", "Records in memory, not yet in a file")
LAG = Gauge("rendezvous_decoy_lag", "Records of the recorded topics not consumed yet, when sampled")
DISK_FULL = Gauge("rendezvous_decoy_disk_full",
                  "1 while the archive's disk is full: nothing is committed, consumption paused")
DISK_RETRY_S = 2.0
"""How often a decoy whose disk is full tries to roll again."""
BATCH_SECONDS = Histogram("rendezvous_decoy_batch_seconds",
                          "Time to buffer one polled batch (and roll, when it is due)",
                          buckets=BATCH_BUCKETS)


REDACTED_TOPICS = ("input", "deadletter")
"""Topics whose records carry a request's input: redacted before they are archived (a
dead letter's value is the invalid input, raw)."""


def _warn_if_open(root: Path) -> None:
    """The archive holds every request: its directories are made 0700 and its files
    0600; a root made by someone else that others may read is said once at start."""
    try:
        mode = root.stat().st_mode & 0o777
    except OSError:
        return  # created 0700 by the first roll
    if mode & 0o077:
        log.warning("archive root %s is mode %o: others may list it (the files are 0600 and "
                    "new directories 0700; chmod 700 %s to close it)", root, mode, root)


DecoyConfig = DecoySettings
"""What the decoy records, where, and how often it rolls files: ``Settings.decoy``."""


class Recorder:
    """One decoy consumer and its writer; drive it with :meth:`step`, end with :meth:`close`."""

    def __init__(self, settings: Settings, config: DecoySettings) -> None:
        if config.archive is None:
            raise DecoyError("no archive directory: set --archive or RENDEZVOUS_DECOY__ARCHIVE")
        self.config = config
        self.budget = CpuBudget(config.max_cpu, every=1)
        """Shared by the steps and the rolls: the decoy's work as a whole stays within it."""
        self.writer = ArchiveWriter(config.archive, config.compression, self.budget)
        key = config.redaction_key.get_secret_value() if config.redaction_key else None
        self.redactor = (Redactor.load(config.redaction, key, config.redaction_warn_after)
                         if config.redaction else None)
        _warn_if_open(config.archive)
        self.records_seen = 0
        self._logical = {settings.topic(name): name for name in config.topics}
        overrides: dict[str, object] = {"fetch.min.bytes": config.fetch_min_bytes,
                                        "fetch.wait.max.ms": config.fetch_wait_max_ms}
        if config.instance_id:
            overrides["group.instance.id"] = config.instance_id
        self._group = settings.group("decoy")
        self.consumer: Consumer = make_consumer(settings, self._group, **overrides)
        self.lag = LagProbe(self.consumer, LAG)
        # The decoy rejects nothing (it archives raw bytes): its bad-records count is 0,
        # exported so ``rendezvous status`` reads the same columns for every component.
        SKIPPED.labels("decoy", "input")
        self.metrics_port: int | None = None
        # next offset to commit, per (topic, partition)
        self._pending: dict[tuple[Any, Any], int] = {}
        self._pending_bytes: dict[str, int] = {}
        self._ready = False
        self._next_prune = 0.0
        self._full_since: float | None = None  # the disk is full: paused, nothing committed
        self._retry_at = 0.0

    @property
    def disk_full(self) -> bool:
        return self._full_since is not None

    def start(self) -> None:
        """Subscribe; the ready line is written on the first partition assignment."""
        self.consumer.subscribe(list(self._logical), on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)

    def step(self) -> int:
        """Poll one batch, buffer it, roll and commit when a limit is reached; returns its size."""
        if self._full_since is not None:
            return self._wait_for_space()
        records = poll_batch(self.consumer, self.config.batch_size, self.config.poll_wait_s)
        started = time.perf_counter()
        self.lag.maybe_update()
        if records:
            arrival_ms = int(time.time() * 1000)
            for group, batch in to_batches(records, self._logical, arrival_ms).items():
                if self.redactor is not None and group[0] in REDACTED_TOPICS:
                    batch = self.redactor.batch(batch)  # personal data never reaches a file
                self.writer.add(group, batch)
                self._pending_bytes[group[0]] = (self._pending_bytes.get(group[0], 0)
                                                 + payload_bytes(batch))
            for record in records:
                self._pending[(record.topic(), record.partition())] = int(record.offset() or 0) + 1
            self.records_seen += len(records)
            BUFFERED.set(self.writer.buffered_records)
        if (self.writer.buffered_bytes >= self.config.roll_bytes
                or self.writer.age_s() >= self.config.roll_seconds):
            self.roll_and_commit()
        if records:
            BATCH_SECONDS.observe(time.perf_counter() - started)
        return len(records)

    def _wait_for_space(self) -> int:
        """Disk full: keep the group membership (poll, paused), retry the roll when due."""
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.pause(assignment)  # again: a rebalance may have assigned new ones
        poll_batch(self.consumer, 1, self.config.poll_wait_s)
        if time.monotonic() >= self._retry_at:
            full_since = self._full_since or 0.0
            self.roll_and_commit()
            if self._full_since is None:
                log.info("archive has space again after %.1f s: resumed recording",
                         time.monotonic() - full_since)
                assignment = self.consumer.assignment()
                if assignment:
                    self.consumer.resume(assignment)
        return 0

    def roll_and_commit(self, commit: bool = True, paced: bool = True) -> None:
        """Make everything buffered durable, then commit the offsets it covers. A full disk
        leaves everything buffered and uncommitted (see :attr:`disk_full`)."""
        try:
            rolled = self.writer.roll(paced)
        except OSError as exc:
            if not _no_space(exc):
                raise
            self._retry_at = time.monotonic() + DISK_RETRY_S
            if self._full_since is None:
                self._full_since = time.monotonic()
                DISK_FULL.set(1)
                log.error("archive disk full at %s (%s): keeping %d records in memory, "
                          "committing nothing and pausing until a roll succeeds (retried "
                          "every %.0f s)", self.config.archive, exc,
                          self.writer.buffered_records, DISK_RETRY_S)
            return
        if self._full_since is not None:
            self._full_since = None
            DISK_FULL.set(0)
        for file in rolled:
            FILES.labels(file.topic).inc()
            RECORDS.labels(file.topic).inc(file.records)
        for topic, n in self._pending_bytes.items():
            BYTES.labels(topic).inc(n)
        self._pending_bytes.clear()
        BUFFERED.set(0)
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._pending.items()]
        self._pending.clear()
        if rolled:
            log.info("rolled %d files (%d records)", len(rolled), sum(f.records for f in rolled))
            self._prune()
        if commit and offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:
                # The files are durable; an uncommitted record is only archived twice.
                log.warning("commit after roll failed (records will be archived again): %s", exc)

    def _prune(self) -> None:
        """Apply the retention, at most every ``prune_interval_s`` (between rolls, so none
        of this decoy's files is being written)."""
        hours, root = self.config.retention_hours, self.config.archive
        if hours is None or root is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self.config.prune_interval_s
        try:
            done = prune(root, int(hours * HOUR_MS))
        except OSError as exc:  # another process pruning the same hour, a full disk, ...
            log.warning("pruning the archive failed (next try later): %s", exc)
            return
        if done.deleted:
            log.info("retention: deleted %d hour partitions older than %s h",
                     len(done.deleted), hours)

    def close(self, commit: bool = True) -> None:
        """Roll what is buffered and commit (unless ``commit`` is False), then leave."""
        try:
            if commit:
                self.roll_and_commit(paced=False)
        finally:
            self.consumer.close()

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", [(p.topic, p.partition) for p in partitions])
        if not self._ready:
            self._ready = True
            announce_ready("decoy", f"group={self._group} archive={self.config.archive} "
                                    f"metrics={self.metrics_port}")

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Still the owner here: finish the files and commit before another member starts.
        self.roll_and_commit(paced=False)
        self._forget_if_full()

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # No longer the owner: keep the data, but a commit would be refused.
        self.roll_and_commit(commit=False, paced=False)
        self._forget_if_full()

    def _forget_if_full(self) -> None:
        """After a revoke the consumer restarts from the committed offsets: what a full disk
        kept in memory would be read (and buffered) a second time."""
        if self._full_since is not None:
            dropped = self.writer.discard()
            self._pending.clear()
            self._pending_bytes.clear()
            BUFFERED.set(0)
            if dropped:
                log.warning("partitions revoked while the disk is full: %d uncommitted "
                            "records dropped from memory, to be read again", dropped)


def _no_space(exc: OSError) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full; pyarrow's I/O errors
    carry the reason in their message only."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(exc) \
        or "Disk quota exceeded" in str(exc)


def run(settings: Settings) -> None:
    """Record as ``settings.decoy`` says until SIGTERM/SIGINT, then roll what is
    buffered, commit and return."""
    stopper = Stopper()
    yield_cpu(settings.decoy.niceness)
    # Arrow's pools default to one thread per core: a roll would take both cores at once.
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    recorder = Recorder(settings, settings.decoy)
    recorder.metrics_port = serve_metrics(settings)
    recorder.start()
    try:
        while not stopper.stopped:
            recorder.step()
            time.sleep(recorder.budget.pause_s())
    except BaseException:
        # Whatever is buffered stays uncommitted and is read again after a restart.
        recorder.close(commit=False)
        raise
    recorder.close()
