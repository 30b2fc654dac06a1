"""Settings sections: environment, then command line on top; one default per value; old
names of moved settings still read, with a warning; endpoints read outside the settings."""

from __future__ import annotations

import ast
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from rendezvous.cli import main
from rendezvous.cli.common import settings
from rendezvous.errors import SettingsError
from rendezvous.local.endpoints import with_local_endpoints, write_endpoints
from rendezvous.settings import (
    RENAMED,
    SETTINGS_FILE,
    LocalSettings,
    Settings,
    WorkerSettings,
    sources,
)
from tests.unit.test_packaging import ROOT


def test_sections_read_the_environment_and_the_command_line_wins(monkeypatch) -> None:
    monkeypatch.setenv("RENDEZVOUS_WORKER__MAX_BATCH", "7")
    monkeypatch.setenv("RENDEZVOUS_WORKER__MAX_WAIT_MS", "3.5")
    monkeypatch.setenv("RENDEZVOUS_MONITOR__THRESHOLDS__MAX_PSI", "0.4")
    monkeypatch.setenv("RENDEZVOUS_METRICS_PORT", "9100")
    assert Settings().worker.max_batch == 7 and Settings().monitor.thresholds.max_psi == 0.4
    s = settings(metrics_port=0, worker={"max_batch": 9, "delay_ms": None},
                 monitor={"thresholds": {"min_samples": 5}})
    assert (s.worker.max_batch, s.worker.max_wait_ms, s.worker.delay_ms) == (9, 3.5, 0.0)
    assert (s.monitor.thresholds.max_psi, s.monitor.thresholds.min_samples) == (0.4, 5)
    assert s.metrics_port == 0


def test_an_invalid_value_is_one_clear_error(monkeypatch) -> None:
    import click

    with pytest.raises(click.ClickException, match="max_batch"):
        settings(worker={"max_batch": 0})


def test_serve_and_workers_cannot_be_told_to_poll_for_under_a_millisecond(monkeypatch) -> None:
    """librdkafka truncates a poll's wait to whole ms: 0.5 would mean never waiting."""
    import click

    with pytest.raises(click.ClickException, match="max_wait_ms"):
        settings(serve={"max_wait_ms": 0.5})
    with pytest.raises(click.ClickException, match="max_wait_ms"):
        settings(worker={"max_wait_ms": 0})
    assert settings(serve={"max_wait_ms": 1}).serve.max_wait_ms == 1.0


def test_help_shows_the_one_default_and_its_variable() -> None:
    shown = CliRunner().invoke(main, ["worker", "--help"]).output
    assert f"default: {WorkerSettings().max_batch}" in shown
    assert "RENDEZVOUS_WORKER__MAX_BATCH" in shown.replace("\n", "").replace(" ", "")


@pytest.fixture()
def warned(monkeypatch: pytest.MonkeyPatch,
           caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The deprecation warnings of this test (``.messages``); each old name is reported once
    a process, so that memory starts empty."""
    monkeypatch.setattr(sources, "_warned", set())
    caplog.set_level(logging.WARNING, logger="rendezvous.settings")
    return caplog


@pytest.mark.parametrize(("old", "new", "read"), [
    ("RENDEZVOUS_LINGER_MS", "RENDEZVOUS_KAFKA__LINGER_MS", lambda s: s.kafka.linger_ms),
    ("RENDEZVOUS_FETCH_WAIT_MAX_MS", "RENDEZVOUS_KAFKA__FETCH_WAIT_MAX_MS",
     lambda s: s.kafka.fetch_wait_max_ms),
    ("RENDEZVOUS_SASL_USERNAME", "RENDEZVOUS_KAFKA__SASL_USERNAME",
     lambda s: int(s.kafka.sasl_username)),
    ("RENDEZVOUS_KAFKA_IO_THREADS", "RENDEZVOUS_LOCAL__IO_THREADS", lambda s: s.local.io_threads),
    ("RENDEZVOUS_LOCAL_BROKERS", "RENDEZVOUS_LOCAL__BROKERS", lambda s: s.local.brokers),
    ("RENDEZVOUS_REDIS_USERNAME", "RENDEZVOUS_REDIS__USERNAME", lambda s: int(s.redis.username)),
])
def test_a_moved_setting_keeps_its_old_variable_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, warned: pytest.LogCaptureFixture, old: str, new: str,
        read: Callable[[Settings], float]) -> None:
    monkeypatch.setenv(old, "3")
    assert read(Settings()) == 3
    [warning] = warned.messages
    assert old in warning and new in warning, warning
    assert read(Settings()) == 3 and len(warned.messages) == 1  # once a process, not per object
    monkeypatch.setenv(new, "4")
    assert read(Settings()) == 4  # the new name wins


def test_the_plain_endpoint_variables_need_no_prefix_and_rank_below_it(
        monkeypatch: pytest.MonkeyPatch, warned: pytest.LogCaptureFixture) -> None:
    for name in ("RENDEZVOUS_BOOTSTRAP_SERVERS", "RENDEZVOUS_KAFKA__BOOTSTRAP_SERVERS",
                 "RENDEZVOUS_REDIS_URL", "RENDEZVOUS_REDIS__URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "plain:1")
    monkeypatch.setenv("REDIS_URL", "redis://plain:2/0")
    s = Settings()
    assert (s.kafka_bootstrap(), s.redis_url()) == ("plain:1", "redis://plain:2/0")
    assert not warned.messages  # not deprecated
    monkeypatch.setenv("RENDEZVOUS_BOOTSTRAP_SERVERS", "old:1")  # as before: prefixed first
    assert Settings().kafka_bootstrap() == "old:1"
    monkeypatch.setenv("RENDEZVOUS_KAFKA__BOOTSTRAP_SERVERS", "new:1")
    assert Settings().kafka_bootstrap() == "new:1"


def test_the_warning_is_one_line_on_stderr(tmp_path: Path) -> None:
    """In a process that has not set up logging (a library user's), it still shows."""
    env = {**os.environ, "RENDEZVOUS_KAFKA_GC": "-XX:+UseSerialGC", "PYTHONPATH": str(ROOT)}
    code = "from rendezvous.settings import Settings; print(Settings().local.kafka_gc)"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    assert done.stdout == "-XX:+UseSerialGC\n"
    assert done.stderr.count("\n") == 1, done.stderr
    assert "RENDEZVOUS_KAFKA_GC" in done.stderr and "RENDEZVOUS_LOCAL__KAFKA_GC" in done.stderr


def test_old_flat_keys_of_a_settings_file_move_to_their_sections(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warned: pytest.LogCaptureFixture) -> None:
    (tmp_path / SETTINGS_FILE).write_text(
        'linger_ms = 4\nkafka_heap = "1g"\n\n[kafka]\nfetch_min_bytes = 1\n')
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert (s.kafka.linger_ms, s.kafka.fetch_min_bytes, s.local.kafka_heap) == (4, 1, "1g")
    said = "\n".join(warned.messages)
    assert "rendezvous.toml: linger_ms is deprecated" in said and "[kafka] linger_ms" in said
    assert "rendezvous.toml: kafka_heap is deprecated" in said and "[local] kafka_heap" in said
    monkeypatch.setenv("RENDEZVOUS_LINGER_MS", "6")  # the environment, even by its old name,
    assert Settings().kafka.linger_ms == 6  # is above the file


def test_old_argument_names_move_too(warned: pytest.LogCaptureFixture) -> None:
    s = Settings(linger_ms=1, kafka_io_threads=5)
    assert (s.kafka.linger_ms, s.local.io_threads) == (1, 5)
    assert len(warned.messages) == 2 and "local={'io_threads': ...}" in warned.messages[1]


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_each_old_name_points_at_a_field(old: str) -> None:
    section, field = RENAMED[old]
    assert old not in Settings.model_fields
    assert field in type(getattr(Settings(), section)).model_fields


def test_closed_values_are_literals() -> None:
    kafka = Settings(kafka={"security_protocol": "sasl_ssl", "sasl_mechanism": "scram-sha-512"}
                     ).kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    with pytest.raises(ValidationError, match="security_protocol"):
        Settings(kafka={"security_protocol": "TLS"})
    with pytest.raises(ValidationError, match="kafka_heap"):
        Settings(local=LocalSettings(kafka_heap="lots"))


def test_topics_and_groups_share_one_name() -> None:
    s = Settings(topic_prefix="p.")
    assert s.topic("input") == s.group("input") == "p.input"


def test_endpoints_come_from_settings_or_a_running_local_stack(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "RENDEZVOUS_BOOTSTRAP_SERVERS", "REDIS_URL",
                 "RENDEZVOUS_REDIS_URL", "RENDEZVOUS_KAFKA__BOOTSTRAP_SERVERS",
                 "RENDEZVOUS_REDIS__URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RENDEZVOUS_STATE_DIR", str(tmp_path))
    with pytest.raises(SettingsError, match="rendezvous local up"):
        Settings().kafka_bootstrap()
    write_endpoints(tmp_path, "127.0.0.1:9", "redis://127.0.0.1:8/0")
    with pytest.raises(SettingsError, match="rendezvous local up"):
        Settings().redis_url()  # the settings themselves never read the file
    found = with_local_endpoints(Settings())
    assert (found.kafka_bootstrap(), found.redis_url()) == ("127.0.0.1:9", "redis://127.0.0.1:8/0")
    assert settings().kafka_bootstrap() == "127.0.0.1:9"  # what a component command runs on
    assert settings(local_endpoints=False).kafka.bootstrap_servers is None  # `up`, `demo` lease
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "given:1")
    assert settings().kafka_bootstrap() == "given:1"  # the environment wins


def test_every_setting_says_what_it_does_and_its_default() -> None:
    """A docstring under each field that names its default, and no history: no commit
    hashes, no measurements (those live in bench/ and docs/benchmarks.md)."""
    sections = {"kafka", "local", "redis", "gateway", "worker", "serve", "decoy", "monitor",
                "thresholds"}
    missing, history = [], []
    for path in sorted((ROOT / "rendezvous" / "settings").glob("*.py")):
        body = [node for cls in ast.parse(path.read_text()).body
                if isinstance(cls, ast.ClassDef) for node in cls.body]
        for field, doc in zip(body, [*body[1:], None], strict=False):
            if not isinstance(field, ast.AnnAssign) or not isinstance(field.target, ast.Name):
                continue
            name = f"{path.stem}.{field.target.id}"
            text = doc.value.value if isinstance(doc, ast.Expr) else ""
            if field.target.id not in sections and "Default" not in str(text):
                missing.append(name)
            if re.search(r"\b[0-9a-f]{7,40}\b|measured|benchmarks\.md", str(text)):
                history.append(name)
    assert not missing and not history, (missing, history)


def test_the_settings_import_no_client_library(tmp_path: Path) -> None:
    """Settings only declare: clients are built in transport/, so importing the settings
    loads neither librdkafka's binding nor redis (a fresh process: this one has both)."""
    code = ("import sys, rendezvous.settings; "
            "print(sorted(m for m in ('confluent_kafka', 'redis', 'faust') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, check=True)
    assert done.stdout == "[]\n", done.stdout + done.stderr
