"""Issue 16: the decoy's disk fills up under load, then space returns.

A real ENOSPC: the archive lives on a small tmpfs that a ballast file fills. The
decoy logs one clear error, commits nothing while it cannot write, keeps what it has,
and resumes when the ballast is deleted; afterwards every input record is in the
archive, and scoring never noticed.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import TopicPartition

from rendezvous.archive import read_archive
from rendezvous.demo.topic_records import TopicRecords
from rendezvous.demo.workload import OpenLoop
from rendezvous.local.pipeline import metrics_endpoints
from rendezvous.local.processes import alive
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import decode_scored
from rendezvous.model import sample_events
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_consumer
from rendezvous.transport.reader import TopicReader
from tests.integration.test_poison import _metric
from tests.streams import producer_for
from tests.stress.chaos.harness import wait_for_decoy

pytestmark = pytest.mark.integration

RATE = 100
BEFORE_S, FULL_S, AFTER_S = 3.0, 6.0, 3.0


@contextlib.contextmanager
def small_disk(where: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` (needs root: CAP_SYS_ADMIN)."""
    where.mkdir(parents=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mount.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk is full (a real ENOSPC)."""
    ballast = disk / "ballast"
    chunk = b"\0" * 65536
    with ballast.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                return ballast


def _committed(settings: Settings) -> list[int]:
    topic = settings.topic("input")
    probe = make_consumer(settings, settings.group("decoy"))
    try:
        return [tp.offset for tp in probe.committed([TopicPartition(topic, p) for p in range(4)],
                                                    10)]
    finally:
        probe.close()


@pytest.mark.timeout(240)
def test_decoy_disk_full_then_space_returns(settings: Settings, supervisor: Supervisor,
                                            tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        archive = disk / "archive"
        for name, args in (("primary", ["worker", "--model", "primary"]),
                           ("canary", ["worker", "--model", "canary"]),
                           ("serve", ["serve"]),
                           ("decoy", ["decoy", "--archive", str(archive), "--roll-seconds", "1",
                                      "--metrics-port", "0"])):
            supervisor.start(name, args)
        features = [msgspec.json.encode(e["features"]) for e in sample_events(100, seed=16)]

        def make(i: int, ts: float) -> tuple[bytes, bytes]:
            rid = b"disk-%06d" % i
            return rid, (b'{"id":"%s","features":%s,"deadline_ms":200,"ts":%.3f}'
                         % (rid, features[i % 100], ts))

        producer = producer_for(settings)
        load = OpenLoop(producer, settings.topic("input"), RATE, make, track=True,
                        partitions=4)
        stopped = threading.Event()
        thread = load.start(stopped)
        time.sleep(BEFORE_S)
        ballast = fill(disk)
        decoy = supervisor.components["decoy"]
        give_up = time.monotonic() + 10
        while "archive disk full" not in decoy.log.read_text() and time.monotonic() < give_up:
            time.sleep(0.1)
        metrics = metrics_endpoints(supervisor)["decoy"]
        assert _metric(metrics, "rendezvous_decoy_disk_full", "") == 1
        committed_when_full = _committed(settings)
        time.sleep(FULL_S)
        assert _committed(settings) == committed_when_full, "committed while the disk was full"
        ballast.unlink()
        time.sleep(AFTER_S)
        stopped.set()
        thread.join(10)
        flush_or_raise(producer)
        assert not load.failed
        sent = {f"disk-{i:06d}" for i in range(load.sent)}

        assert wait_for_decoy(settings, 60), "the decoy did not catch up after space returned"
        assert _metric(metrics, "rendezvous_decoy_disk_full", "") == 0
        log = decoy.log.read_text()
        assert log.count("archive disk full") == 1, "one error per outage"
        assert "archive has space again" in log
        assert alive(decoy.pid)
        supervisor.terminate("decoy")

        # Scoring was not affected: one result per request, none a timeout.
        reader = TopicRecords(settings, "scored")
        records = reader.read_until(lambda rs: len(rs) >= len(sent), 60, settle_s=1.0)
        reader.close()
        statuses: dict[str, list[str]] = collections.defaultdict(list)
        for record in records:
            scored = decode_scored(record.value())
            statuses[scored.id].append(scored.status)
        assert set(statuses) == sent
        counts = collections.Counter(s for ss in statuses.values() for s in ss)
        assert set(counts) <= {"ok", "fallback"} and sum(counts.values()) == len(sent), counts

        # No record missing from the archive.
        with TopicReader(settings, settings.topic("input")) as inputs:
            offsets = {(r.partition(), r.offset()) for r in inputs.read_to_end(30)}
        rows = read_archive(archive, topic="input")
        archived = set(zip(rows["partition"].to_pylist(), rows["offset"].to_pylist(),
                           strict=True))
        assert offsets and not offsets - archived, f"{len(offsets - archived)} not archived"
        print(f"{len(sent)} requests; {len(archived)} archived; statuses {dict(counts)}")
