"""Settings sections: environment, then command line on top; one default per value."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rendezvous.cli import main
from rendezvous.cli.common import settings
from rendezvous.settings import Settings, WorkerSettings


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
