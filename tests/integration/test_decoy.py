"""The decoy against the real broker: every record archived byte-identical, nothing lost
across kill -9, and a clean SIGTERM that commits what it wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from confluent_kafka import KafkaError, Message, TopicPartition

from rendezvous.archive import read_archive, skipped_files
from rendezvous.local.processes import free_port
from rendezvous.local.supervisor import Supervisor
from rendezvous.readiness import READY_MARK
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, make_consumer, make_producer

pytestmark = pytest.mark.integration

Sent = dict[tuple[int, int], tuple[bytes | None, bytes | None, list | None]]
"""(partition, offset) -> (key, value, headers), from the producer's delivery reports."""


def payloads(n: int, start: int = 0) -> list[tuple[bytes | None, bytes | None, list | None]]:
    """``n`` records, one in ten malformed in a different way, some with headers."""
    malformed = [b"", b"not json", b'{"id": "x", "features": ', b"\xff\xfe\x00\x01",
                 b'{"id": 7}', None, b'{"features": [1, 2]}', b"[]", b"null", b" "]
    out = []
    for i in range(start, start + n):
        key = f"req-{i}".encode()
        value = malformed[(i // 10) % len(malformed)] if i % 10 == 9 else (
            f'{{"id":"req-{i}","features":[{i}.5,2.25]}}'.encode())
        headers = [("trace", f"t{i}".encode()), ("empty", b"")] if i % 7 == 0 else None
        out.append((key, value, headers))
    return out


def produce(settings: Settings, records: list[tuple], topic: str = "input",
            pace_s: float = 0.0, sent: Sent | None = None) -> Sent:
    """Produce ``records`` (key, value, headers); returns where each one landed."""
    sent = {} if sent is None else sent
    errors: list[KafkaError] = []

    def on_delivery(headers: list | None):  # delivery reports carry no headers
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                errors.append(error)
            else:
                sent[(message.partition(), message.offset())] = (message.key(), message.value(),
                                                                 headers)
        return delivered

    producer = make_producer(settings)
    for i, (key, value, headers) in enumerate(records):
        producer.produce(settings.topic(topic), value, key, headers=headers,
                         on_delivery=on_delivery(headers))
        if pace_s and i % 100 == 99:
            producer.flush(5)
            time.sleep(pace_s)
        producer.poll(0)
    flush_or_raise(producer)
    assert not errors, errors
    return sent


def archived(root: Path, topic: str = "input") -> Sent:
    table = read_archive(root, topic)
    assert skipped_files(table) == []
    rows = zip(table["partition"].to_pylist(), table["offset"].to_pylist(),
               table["key"].to_pylist(), table["value"].to_pylist(),
               table["headers"].to_pylist(), strict=True)
    return {(p, o): (k, v, [(h["key"], h["value"]) for h in hs] if hs else None)
            for p, o, k, v, hs in rows}


def wait_for_archive(root: Path, n: int, topic: str = "input", timeout_s: float = 45.0) -> None:
    """Wait until the archive holds ``n`` distinct ``topic`` records (files roll every 0.2 s)."""
    deadline = time.monotonic() + timeout_s
    count = 0
    while time.monotonic() < deadline:
        if root.is_dir():
            count = read_archive(root, topic).num_rows
            if count >= n:
                return
        time.sleep(0.1)
    raise AssertionError(f"archive holds {count} {topic} records, expected {n}")


def decoy_args(root: Path, instance: str = "decoy-1") -> list[str]:
    return ["-v", "decoy", "--archive", str(root), "--roll-seconds", "0.2",
            "--instance-id", instance]


def test_every_record_valid_or_not_is_archived_byte_identical(
        settings: Settings, supervisor: Supervisor, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    supervisor.start("decoy", decoy_args(root))
    sent = produce(settings, payloads(2000))
    decisions = produce(settings, [(b"d1", b'{"id":"d1"}', None)], topic="decisions")
    wait_for_archive(root, len(sent))
    wait_for_archive(root, 1, topic="decisions")
    assert archived(root) == sent
    assert list(archived(root, "decisions").values()) == list(decisions.values())
    files = list(root.rglob("*.parquet"))
    assert files and all(f.relative_to(root).parts[1].startswith("date=") for f in files)
    assert {f.relative_to(root).parts[0] for f in files} == {"input", "decisions"}


def test_kill_9_mid_stream_then_restart_archives_each_input_exactly_once(
        settings: Settings, supervisor: Supervisor, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    supervisor.start("decoy", decoy_args(root))
    sent: Sent = {}
    records = payloads(6000)
    producing = threading.Thread(target=produce, args=(settings, records),
                                 kwargs={"pace_s": 0.03, "sent": sent})
    producing.start()
    try:
        wait_for_archive(root, 800)
        supervisor.kill9("decoy")
        assert producing.is_alive(), "the producer finished before the kill: not mid-stream"
    finally:
        producing.join()
    assert len(sent) == len(records)
    supervisor.restart("decoy")
    wait_for_archive(root, len(sent))
    assert archived(root) == sent  # each (partition, offset) once, bytes identical
    raw = pq.read_table(root / "input", columns=["partition", "offset"])
    assert raw.num_rows >= len(sent)
    copies = Counter(zip(raw["partition"].to_pylist(), raw["offset"].to_pylist(), strict=True))
    assert set(copies) == set(sent)


def _metric(port: int, name: str) -> float:
    """The value of an unlabelled metric on the decoy's /metrics (0 when not served yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_sigterm_rolls_commits_and_exits_0(settings: Settings, component_env: dict[str, str],
                                          tmp_path: Path) -> None:
    root = tmp_path / "archive"
    log = tmp_path / "decoy.log"
    port = free_port()
    # roll-seconds far away: only the SIGTERM can roll these records
    argv = [sys.executable, "-m", "rendezvous", "-v", "decoy", "--archive", str(root),
            "--roll-seconds", "600"]
    env = {**os.environ, **component_env, "RENDEZVOUS_METRICS_PORT": str(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while READY_MARK not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        sent = produce(settings, payloads(500))
        while (_metric(port, "rendezvous_decoy_buffered_records") < len(sent)
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert not root.exists() or not list(root.rglob("*.parquet"))  # all still in memory
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert archived(root) == sent
    consumer = make_consumer(settings, settings.group("decoy"))
    partitions = [TopicPartition(settings.topic("input"), p) for p in range(4)]
    committed = consumer.committed(partitions, timeout=10)
    consumer.close()
    assert {tp.partition: tp.offset for tp in committed} == {
        p: 1 + max(o for (q, o) in sent if q == p) for p in range(4)}
