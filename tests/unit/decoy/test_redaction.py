"""The decoy's redaction policy: dropped and keyed-hashed input fields, checked in the
Parquet files themselves; and a redacted archive still backtests."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from confluent_kafka import Message

from rendezvous.archive import read_archive
from rendezvous.decoy.batches import to_batches
from rendezvous.decoy.redaction import (
    HASH_PREFIX,
    REDACTION_HEADER,
    RedactionError,
    Redactor,
)
from rendezvous.decoy.writer import ArchiveWriter
from rendezvous.model import sample_events

T0 = 1_709_622_900_000
LOGICAL = {"p.input": "input"}
EMAIL, CUSTOMER, POSTCODE = "ana.example@mail.test", "cust-8812734", "SW1A 1AA"


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "redaction.yaml"
    path.write_text("drop: [email, profile.phone]\nhash: [customer, profile.postcode]\n")
    return path


def events() -> list[bytes]:
    out = []
    for i, event in enumerate(sample_events(5, seed=3)):
        event.update(id=f"r{i}", email=EMAIL, customer=CUSTOMER,
                     profile={"postcode": POSTCODE, "phone": "+44 20 7946 0000", "age": 40})
        out.append(msgspec.json.encode(event))
    return [*out, b"not json " + EMAIL.encode()]


def archive(root: Path, redactor: Redactor, values: list[bytes]) -> list[Path]:
    records = [Message(topic="p.input", partition=0, offset=i, key=f"r{i}".encode(),
                       value=v, timestamp=(1, T0)) for i, v in enumerate(values)]
    writer = ArchiveWriter(root, compression="none")  # so a search of the bytes means something
    for group, batch in to_batches(records, LOGICAL, T0).items():
        writer.add(group, redactor.batch(batch))
    return [f.path for f in writer.roll()]


def test_original_bytes_are_not_in_the_parquet_files(tmp_path: Path, policy: Path) -> None:
    redactor = Redactor.load(policy, "k3y")
    paths = archive(tmp_path / "archive", redactor, events())
    for path in paths:
        data = path.read_bytes()
        for secret in (EMAIL, CUSTOMER, POSTCODE, "+44 20 7946 0000"):
            assert secret.encode() not in data, f"{secret} in {path.name}"
    table = read_archive(tmp_path / "archive", "input")
    rows = table.to_pylist()
    for row in rows:  # decoded too, whatever the file's compression
        assert not [s for s in (EMAIL, CUSTOMER, POSTCODE) if s.encode() in row["value"]]
    first = msgspec.json.decode(rows[0]["value"])
    assert "email" not in first and "phone" not in first["profile"]
    assert first["customer"] == redactor.digest(CUSTOMER) and first["customer"].startswith(
        HASH_PREFIX)
    assert first["profile"] == {"postcode": redactor.digest(POSTCODE), "age": 40}
    assert first["id"] == "r0" and first["features"]  # what backtest and replay need
    # The same value hashes the same (joins still work); another key, differently.
    assert msgspec.json.decode(rows[1]["value"])["customer"] == first["customer"]
    assert Redactor.load(policy, "other").digest(CUSTOMER) != first["customer"]
    undecodable = rows[-1]
    assert undecodable["value"] == b""
    assert {"key": REDACTION_HEADER, "value": b"undecodable"} in undecodable["headers"]


def test_a_redacted_archive_still_scores(tmp_path: Path, policy: Path) -> None:
    from rendezvous.backtest.scoring import score_inputs
    from rendezvous.model import load_model, resolve_model
    from rendezvous.settings import Settings

    archive(tmp_path / "archive", Redactor.load(policy, "k3y"), events())
    values = read_archive(tmp_path / "archive", "input").column("value").to_pylist()
    model = load_model(resolve_model(Settings().models_dir, "canary"))
    ids, scores, invalid = score_inputs(values, model)
    assert ids == [f"r{i}" for i in range(5)] and len(scores) == 5
    assert invalid == 1  # the undecodable record, archived empty


def test_bad_policies_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    for text, message in (("hash: [customer]\n", "REDACTION_KEY"),
                          ("drop: [id]\n", "cannot be redacted"),
                          ("remove: [x]\n", "drop"), ("drop: ['a..b']\n", "dotted")):
        path.write_text(text)
        with pytest.raises(RedactionError, match=message):
            Redactor.load(path, None)
    with pytest.raises(RedactionError, match="cannot read"):
        Redactor.load(tmp_path / "missing.yaml", "k")


def test_the_decoy_redacts_input_before_its_files(tmp_path: Path, policy: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder's hook: input redacted, decisions archived as they came."""
    from pydantic import SecretStr

    from rendezvous.decoy import recorder as module
    from rendezvous.settings import DecoySettings, Settings

    settings = Settings(kafka={"bootstrap_servers": "127.0.0.1:1"}, topic_prefix="p.")
    decision = b'{"id":"r0","status":"ok","chosen":"primary"}'
    records = [Message(topic="p.input", partition=0, offset=i, key=b"k", value=v,
                       timestamp=(1, T0)) for i, v in enumerate(events())]
    records.append(Message(topic="p.decisions", partition=0, offset=0, key=b"r0",
                           value=decision, timestamp=(1, T0)))
    monkeypatch.setattr(module, "poll_batch", lambda *_args: records)
    config = DecoySettings(archive=tmp_path, redaction=policy, compression="none",
                           redaction_key=SecretStr("k3y"))
    recorder = module.Recorder(settings, config)
    try:
        recorder.step()
        recorder.roll_and_commit(commit=False)
    finally:
        recorder.consumer.close()
    files = list(tmp_path.rglob("*.parquet"))
    assert {f.relative_to(tmp_path).parts[0] for f in files} == {"input", "decisions"}
    for path in files:
        assert EMAIL.encode() not in path.read_bytes() and CUSTOMER.encode() not in \
            path.read_bytes()
    assert read_archive(tmp_path, "decisions").column("value").to_pylist() == [decision]
