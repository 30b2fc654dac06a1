"""Issue 31, item 5 (the decoy's side): redaction covers record keys and headers, a
policy path that never matches is said once, dead letters are redacted like inputs, and
the archive is readable by its owner only (directories 0700, files 0600). Checked in the
Parquet files themselves, as tests/unit/decoy/test_redaction.py does."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Message

from rendezvous.archive import read_archive
from rendezvous.decoy.batches import to_batches
from rendezvous.decoy.redaction import HASH_PREFIX, RedactionError, Redactor
from rendezvous.decoy.writer import ArchiveWriter

T0 = 1_709_622_900_000
LOGICAL = {"p.input": "input", "p.deadletter": "deadletter", "p.decisions": "decisions"}
EMAIL, CUSTOMER, PHONE = "ana.example@mail.test", "cust-8812734", "+44 20 7946 0000"


def event(i: int) -> bytes:
    return msgspec.json.encode({"id": f"r{i}", "features": {"x": 1.0}, "email": EMAIL,
                                "customer": CUSTOMER, "profile": {"phone": PHONE}})


def archive(root: Path, redactor: Redactor, records: list[Message]) -> list[Path]:
    writer = ArchiveWriter(root, compression="none")  # a search of the bytes means something
    for group, batch in to_batches(records, LOGICAL, T0).items():
        writer.add(group, redactor.batch(batch))
    return [f.path for f in writer.roll()]


def record(i: int, key: bytes | None, headers: list[tuple[str, bytes]] | None = None,
           value: bytes | None = None, topic: str = "p.input") -> Message:
    return Message(topic=topic, partition=0, offset=i, key=key,
                   value=event(i) if value is None else value, headers=headers,
                   timestamp=(1, T0))


def policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_a_key_or_header_that_is_a_redacted_field_is_redacted_with_it(tmp_path: Path) -> None:
    """Producers key records by customer or copy an email into a header: the field's
    hash must not sit beside its raw value. No `key`/`headers` in this policy at all."""
    redactor = Redactor.load(policy(tmp_path, "drop: [email, profile.phone]\n"
                                              "hash: [customer]\n"), "k3y")
    records = [record(0, CUSTOMER.encode(), [("x-user", EMAIL.encode()),
                                             ("x-customer", CUSTOMER.encode()),
                                             ("traceparent", b"00-abc-01"),
                                             ("rendezvous.reason", b"kept")]),
               record(1, b"r1", [("x-phone", PHONE.encode())])]
    paths = archive(tmp_path / "archive", redactor, records)
    for path in paths:
        data = path.read_bytes()
        for secret in (EMAIL, CUSTOMER, PHONE):
            assert secret.encode() not in data, secret
    rows = read_archive(tmp_path / "archive", "input").to_pylist()
    assert rows[0]["key"] == redactor.digest(CUSTOMER).encode()  # the field's own hash
    assert rows[0]["headers"] == [
        {"key": "x-customer", "value": redactor.digest(CUSTOMER).encode()},
        {"key": "traceparent", "value": b"00-abc-01"},
        {"key": "rendezvous.reason", "value": b"kept"}]  # x-user (the dropped email): gone
    assert rows[1]["key"] == b"r1" and rows[1]["headers"] == []  # the id stays: it joins


def test_the_policy_names_keys_and_headers(tmp_path: Path) -> None:
    redactor = Redactor.load(policy(tmp_path, "hash: [customer]\nkey: hash\nheaders:\n"
                                              "  drop: [x-session]\n  hash: [x-user]\n"), "k3y")
    records = [record(0, b"order-77", [("x-session", b"s-123"), ("x-user", b"u-9"),
                                       ("x-other", b"o")])]
    archive(tmp_path / "archive", redactor, records)
    (row,) = read_archive(tmp_path / "archive", "input").to_pylist()
    assert row["key"] == redactor.digest("order-77").encode()
    assert row["headers"] == [{"key": "x-user", "value": redactor.digest("u-9").encode()},
                              {"key": "x-other", "value": b"o"}]
    every = Redactor.load(policy(tmp_path, "key: drop\nheaders:\n  drop: ['*']\n"), None)
    batch = next(iter(to_batches([record(0, b"k", [("a", b"1"), ("rendezvous.x", b"2")])],
                                 LOGICAL, T0).values()))
    (row,) = every.batch(batch).to_pylist()
    assert row["key"] is None and row["headers"] == [{"key": "rendezvous.x", "value": b"2"}]


def test_bad_key_and_header_policies_are_refused(tmp_path: Path) -> None:
    for text, message in (("key: encrypt\n", "keep, hash, drop"),
                          ("headers: [x]\n", "headers"),
                          ("headers:\n  drop: [rendezvous.reason]\n", "pipeline's own"),
                          ("key: hash\n", "REDACTION_KEY"),
                          ("headers:\n  hash: [x]\n", "REDACTION_KEY")):
        with pytest.raises(RedactionError, match=message):
            Redactor.load(policy(tmp_path, text), None)


def test_a_path_that_never_matches_is_said_once_after_n_records(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor.load(policy(tmp_path, "drop: [email, profile.phoen]\nheaders:\n"
                                              "  drop: [x-nothing, x-user]\n"), None,
                             warn_after=10)
    batch = next(iter(to_batches([record(i, b"k", [("x-user", b"u")]) for i in range(6)],
                                 LOGICAL, T0).values()))
    with caplog.at_level(logging.WARNING, logger="rendezvous.decoy.redaction"):
        redactor.batch(batch)
        assert not caplog.records  # 6 records: too early to say
        redactor.batch(batch)
        redactor.batch(batch)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said  # once each, not once per batch
    assert "profile.phoen" in said[0] and "12 records" in said[0]
    assert "header x-nothing" in said[1]
    assert redactor.silent() == ["profile.phoen", "header x-nothing"]


def test_the_decoy_redacts_dead_letters_and_its_files_are_private(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead letter's value is the invalid input as sent: redacted like an input. The
    archive's directories are 0700 and its files 0600, whatever the umask."""
    from pydantic import SecretStr

    from rendezvous.decoy import recorder as module
    from rendezvous.settings import DecoySettings, Settings

    settings = Settings(kafka={"bootstrap_servers": "127.0.0.1:1"}, topic_prefix="p.")
    # invalid (no features list an input accepts) but a JSON object: redacted by path
    letter = msgspec.json.encode({"id": "bad-1", "features": "oops", "email": EMAIL,
                                  "customer": CUSTOMER})
    records = [record(0, CUSTOMER.encode(), value=letter, topic="p.deadletter",
                      headers=[("rendezvous.reason", b"features: not a list")]),
               record(1, b"r1"),
               record(0, b"r0", value=b'{"id":"r0","status":"ok"}', topic="p.decisions")]
    monkeypatch.setattr(module, "poll_batch", lambda *_args: records)
    old_umask = os.umask(0o022)
    try:
        config = DecoySettings(archive=tmp_path / "archive", compression="none",
                               topics=("input", "decisions", "deadletter"),
                               redaction=policy(tmp_path, "drop: [email]\nhash: [customer]\n"),
                               redaction_key=SecretStr("k3y"))
        recorder = module.Recorder(settings, config)
        try:
            recorder.step()
            recorder.roll_and_commit(commit=False)
        finally:
            recorder.consumer.close()
    finally:
        os.umask(old_umask)
    root = tmp_path / "archive"
    files = list(root.rglob("*.parquet"))
    assert {f.relative_to(root).parts[0] for f in files} == {"input", "decisions",
                                                             "deadletter"}
    for path in files:
        assert EMAIL.encode() not in path.read_bytes()
        assert CUSTOMER.encode() not in path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    directories = [p for p in root.rglob("*") if p.is_dir()] + [root]
    assert len(directories) >= 7
    for directory in directories:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    (dead,) = read_archive(root, "deadletter").to_pylist()
    assert msgspec.json.decode(dead["value"])["customer"].startswith(HASH_PREFIX)
    assert {"key": "rendezvous.reason", "value": b"features: not a list"} in dead["headers"]


def test_forget_keeps_the_files_private(tmp_path: Path) -> None:
    from rendezvous.archive.retention import forget

    redactor = Redactor.load(policy(tmp_path, "drop: [email]\n"), None)
    (path,) = archive(tmp_path / "archive", redactor, [record(0, b"r0"), record(1, b"r1")])
    path.chmod(0o644)  # a file of an older archive
    assert forget(tmp_path / "archive", "r0").rows == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_archive_root_others_may_read_is_said_at_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from rendezvous.decoy.recorder import Recorder
    from rendezvous.settings import DecoySettings, Settings

    root = tmp_path / "open"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    with caplog.at_level(logging.WARNING):
        recorder = Recorder(Settings(kafka={"bootstrap_servers": "127.0.0.1:1"}),
                            DecoySettings(archive=root))
        recorder.consumer.close()
    assert "chmod 700" in caplog.text and "755" in caplog.text
