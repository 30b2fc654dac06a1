"""What the demo reads back after the load: the archive the decoy wrote, and the
monitor's windows and alerts."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import msgspec

from rendezvous.archive import ArchiveError, read_archive
from rendezvous.archive.layout import list_files
from rendezvous.monitor.alerts import Alert
from rendezvous.settings import Settings
from rendezvous.transport.reader import NotAtEnd, TopicReader

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
    """Alerts on the alerts topic, counted by cause (what was read in ``timeout_s``)."""
    causes: Counter[str] = Counter()
    with TopicReader(settings, settings.topic("alerts"), name="demo-alerts") as reader:
        try:
            for record in reader.read_to_end(timeout_s):
                try:
                    causes[msgspec.json.decode(record.value() or b"", type=Alert).cause] += 1
                except msgspec.DecodeError:
                    causes["(undecodable)"] += 1
        except NotAtEnd:
            pass
    return causes
