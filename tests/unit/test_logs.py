"""One log format: librdkafka's own lines arrive as records of Python logging, never raw."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from rendezvous.cli.common import settings as cli_settings
from rendezvous.transport.connect import kafka_config

SCRIPT = """
import logging
from rendezvous import logs
from rendezvous.settings import Settings
from rendezvous.transport.clients import make_producer

logs.setup(logging.INFO, {fmt!r})
producer = make_producer(Settings(kafka={{"bootstrap_servers": "127.0.0.1:1"}}))
producer.poll(1.5)  # log lines are served by poll, like delivery reports
"""


def _stderr(fmt: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(fmt=fmt)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


def test_librdkafka_lines_come_through_logging_as_json() -> None:
    lines = _stderr("json")
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    refused = [r for r in records if r["logger"] == "rendezvous.kafka"
               and "Connection refused" in r["message"]]
    assert refused and refused[0]["level"] == "ERROR"


def test_text_format_has_no_raw_client_lines() -> None:
    lines = _stderr("text")
    assert any(" ERROR rendezvous.kafka: " in line for line in lines), lines
    assert not [line for line in lines if line.startswith("%")], lines


def test_kafka_config_hands_every_client_the_logger() -> None:
    conf = kafka_config(cli_settings(kafka={"bootstrap_servers": "127.0.0.1:1"}))
    assert isinstance(conf["logger"], logging.Logger)
    assert conf["logger"].name == "rendezvous.kafka"


def test_cli_prints_errors_a_user_can_act_on_as_one_line_and_bugs_with_traceback() -> None:
    import click
    import pytest
    from click.testing import CliRunner

    from rendezvous.cli.common import clear_errors
    from rendezvous.errors import RendezvousError

    @click.command()
    @click.argument("kind")
    def fails(kind: str) -> None:
        with clear_errors():
            raise RendezvousError("do X") if kind == "ours" else ValueError("a bug")

    ours = CliRunner().invoke(fails, ["ours"])
    assert ours.exit_code == 1 and ours.output.strip() == "Error: do X"
    with pytest.raises(ValueError, match="a bug"):
        CliRunner().invoke(fails, ["bug"], catch_exceptions=False)


def test_a_warning_librdkafka_retries_by_itself_is_info(caplog) -> None:
    from rendezvous.logs import KAFKA_LOGGER

    KAFKA_LOGGER.setLevel(logging.WARNING)
    with caplog.at_level(logging.WARNING, logger="rendezvous.kafka"):
        KAFKA_LOGGER.warning("GETPID [p#producer-1] [thrd:main]: Failed to acquire idempotence "
                             "PID from broker b/1: Broker: Coordinator load in progress: retrying")
        KAFKA_LOGGER.warning("FAIL [p#producer-1]: b/1: Disconnected")
    assert [r.getMessage().split(":")[-1] for r in caplog.records] == [" Disconnected"]


LIBRARY_SCRIPT = """
import logging
from rendezvous import logs

logs.setup(logging.{level})
logging.getLogger("somelib.module").info("a library's info")
logging.getLogger("somelib.module").warning("a library's warning")
logging.getLogger("rendezvous.demo.run").info("our own info")
logging.getLogger("uvicorn.access").info("GET /v2/health/ready 200")
import matplotlib.font_manager  # a fresh MPLCONFIGDIR: it builds its font cache and says so
"""


def _library_stderr(level: str, config_dir: str) -> str:
    done = subprocess.run([sys.executable, "-c", LIBRARY_SCRIPT.format(level=level)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MPLCONFIGDIR": config_dir})
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_library_s_info_lines_are_not_shown_its_warnings_are(tmp_path) -> None:
    stderr = _library_stderr("INFO", str(tmp_path / "mpl"))
    assert "a library's info" not in stderr
    assert "fontManager" not in stderr, stderr
    assert "WARNING somelib.module: a library's warning" in stderr
    assert "INFO rendezvous.demo.run: our own info" in stderr
    assert "GET /v2/health/ready 200" in stderr  # `gateway --access-log` asked for it


def test_debug_shows_every_library_line(tmp_path) -> None:
    stderr = _library_stderr("DEBUG", str(tmp_path / "mpl"))
    assert "INFO somelib.module: a library's info" in stderr
    assert "INFO matplotlib.font_manager: generated new fontManager" in stderr, stderr
