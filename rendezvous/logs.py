"""One log format for every component, librdkafka's lines included.

The CLI calls :func:`setup` once per process; the choice travels to child
processes (``demo``, ``up``) through ``RENDEZVOUS_LOG_FORMAT``. Every Kafka
client is built from :func:`rendezvous.transport.connect.kafka_config`, which hands librdkafka
:data:`KAFKA_LOGGER`, so the client's own log lines (``%4|...|GETPID|...``) are
records of this logger instead of raw lines on stderr. Other libraries' info lines
(matplotlib's ``generated new fontManager``, ...) are not shown below debug.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Literal

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
FORMAT_ENV = "RENDEZVOUS_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

KAFKA_LOGGER = logging.getLogger("rendezvous.kafka")
"""The logger librdkafka writes to (every Producer, Consumer and AdminClient)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message`` (+ ``exc``)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class RetryingIsInfo(logging.Filter):
    """librdkafka warns of conditions it retries by itself (``GETPID ... Coordinator load
    in progress: retrying`` on a broker that just started): those are info, not warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and record.getMessage().endswith(": retrying"):
            record.levelno, record.levelname = logging.INFO, "INFO"
            return KAFKA_LOGGER.isEnabledFor(logging.INFO)
        return True


KAFKA_LOGGER.addFilter(RetryingIsInfo())

OWN_LOGGERS = ("rendezvous", "__main__", "uvicorn.access")
"""Loggers whose info lines a user sees: the project's, and the gateway's access log (shown
only when asked for with ``--access-log``)."""


class LibraryInfoIsNoise(logging.Filter):
    """A library's info lines speak to its own developers (matplotlib's ``generated new
    fontManager`` on a fresh machine, ...): a user sees a library's warnings and errors only;
    ``-vv`` (debug) shows everything."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or any(
            record.name == own or record.name.startswith(f"{own}.") for own in OWN_LOGGERS)


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def setup(level: int, fmt: LogFormat | None = None) -> LogFormat:
    """Send every log record of this process to stderr in ``fmt`` (default: the
    environment's ``RENDEZVOUS_LOG_FORMAT``, else text); returns the format used."""
    chosen = fmt or os.environ.get(FORMAT_ENV, "text")
    if chosen not in FORMATS:
        raise ValueError(f"{FORMAT_ENV}={chosen!r}: expected one of {', '.join(FORMATS)}")
    fmt = "json" if chosen == "json" else "text"
    os.environ[FORMAT_ENV] = fmt  # child processes log the same way
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    if level > logging.DEBUG:
        handler.addFilter(LibraryInfoIsNoise())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # librdkafka's info lines (broker disconnects of idle connections, ...) are noise
    # below debug; its warnings and errors stay.
    KAFKA_LOGGER.setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    return fmt
