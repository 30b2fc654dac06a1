"""What the demo reads back after the load: the archive the decoy wrote, and the
monitor's windows and alerts."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from rendezvous.archive import ArchiveError, read_archive
from rendezvous.archive.layout import list_files
from rendezvous.monitor.alerts import Alert
from rendezvous.settings import Settings

ARCHIVED_TOPICS = ("input", "decisions")


@dataclass(frozen=True)
class ArchiveStats:
    """Size of the archive, and its records per topic (deduplicated)."""

    root: Path
    files: int
    bytes: int
    records: dict[str, int]


def archive_stats(root: Path) -> ArchiveStats:
    """Files, bytes and records of the archive under ``root`` (empty if there is none)."""
    if not root.is_dir():
        return ArchiveStats(root, 0, 0, dict.fromkeys(ARCHIVED_TOPICS, 0))
    files = list(list_files(root))
    try:
        records = {t: read_archive(root, t).num_rows for t in ARCHIVED_TOPICS}
    except ArchiveError:
        records = dict.fromkeys(ARCHIVED_TOPICS, 0)
    return ArchiveStats(root, len(files), sum(f.stat().st_size for f in files), records)


def wait_archived(root: Path, want: dict[str, int], timeout_s: float) -> ArchiveStats:
    """Poll the archive until it holds ``want[topic]`` records of each topic (the decoy
    rolls files every few seconds), or ``timeout_s`` passed; returns the last stats."""
    give_up = time.monotonic() + timeout_s
    while True:
        stats = archive_stats(root)
        done = all(stats.records.get(t, 0) >= n for t, n in want.items())
        if done or time.monotonic() >= give_up:
            return stats
        time.sleep(0.25)


def windows_url(metrics_url: str) -> str:
    """The monitor's ``/windows`` beside its ``/metrics``."""
    return metrics_url.removesuffix("/metrics") + "/windows"


def wait_windows_closed(url: str, timeout_s: float) -> bool:
    """Whether the monitor, within ``timeout_s``, closed every window it has data for
    (its alerts are sent before a window shows as closed)."""
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                windows = json.loads(reply.read())["windows"]
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            windows = []
        if windows and all(w["closed"] for w in windows):
            return True
        time.sleep(0.25)
    return False


def read_alerts(settings: Settings, timeout_s: float = 10.0) -> Counter[str]:
    """Alerts on the alerts topic, counted by cause."""
    topic = settings.topic("alerts")
    consumer = Consumer(settings.kafka_config(**{
        "group.id": f"{settings.group('demo-alerts')}-{uuid.uuid4().hex[:6]}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    }))
    causes: Counter[str] = Counter()
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        give_up = time.monotonic() + timeout_s
        done: set[int] = set()
        while len(done) < len(ends) and time.monotonic() < give_up:
            for p, end in ends.items():
                if end == 0 or consumer.position([TopicPartition(topic, p)])[0].offset >= end:
                    done.add(p)
            for record in consumer.consume(500, 0.1):
                value = record.value()
                if record.error() is None and value:
                    try:
                        causes[msgspec.json.decode(value, type=Alert).cause] += 1
                    except msgspec.DecodeError:
                        causes["(undecodable)"] += 1
    finally:
        consumer.close()
    return causes
