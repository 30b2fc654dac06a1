"""Why Kafka cannot be reached, in words a user can act on.

librdkafka reports a refused login or a failed TLS handshake only in its error
callback and log; the call that fails says "Broker transport failure". So when a
command fails that way, :func:`why_unreachable` connects once more, listening, and
names the cause: no server there, a server that wants TLS/SASL, a certificate that
cannot be verified, wrong credentials. Passwords are never part of the answer.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from rendezvous.settings import Settings
from rendezvous.transport.connect import kafka_config

TRANSPORT_CODES = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
                   KafkaError._AUTHENTICATION, KafkaError._SSL}
"""Failures that may come from a refused connection rather than from the request."""


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a Kafka error that a refused connection could explain."""
    if not isinstance(exc, KafkaException) or not exc.args:
        return False
    error = exc.args[0]
    return isinstance(error, KafkaError) and error.code() in TRANSPORT_CODES


def why_unreachable(settings: Settings, timeout_s: float = 5.0) -> str | None:
    """The reason these settings cannot talk to Kafka, or None if they can (or it is not
    clear why not)."""
    heard = _Lines()
    logger = logging.getLogger(f"{__name__}.probe")
    logger.handlers = [heard]
    logger.propagate = False
    errors: list[KafkaError] = []
    from confluent_kafka.admin import AdminClient

    config: dict[str, Any] = kafka_config(settings, error_cb=errors.append, logger=logger)
    admin = AdminClient(config)
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:  # until a cause is heard, or the time is up
        try:
            admin.list_topics(timeout=0.5)
            return None
        except KafkaException:
            admin.poll(0.1)  # serve the error callbacks still queued
        if any(e.code() != KafkaError._ALL_BROKERS_DOWN for e in errors):
            break
    said = "\n".join([*(e.str() for e in errors), *heard.lines])
    kafka = settings.kafka
    if "Authentication failed" in said or "invalid credentials" in said:
        return (f"Kafka refused the login of user {kafka.sasl_username!r} "
                f"({kafka.sasl_mechanism}): wrong user name or password "
                "(RENDEZVOUS_KAFKA__SASL_USERNAME, RENDEZVOUS_KAFKA__SASL_PASSWORD)")
    if "SSL handshake failed" in said:
        detail = said.split("SSL handshake failed:", 1)[1].split("(after", 1)[0].strip()
        return (f"the TLS handshake with Kafka failed ({detail}); "
                "RENDEZVOUS_KAFKA__SSL_CA_LOCATION must name the CA that signed the broker's "
                "certificate")
    bootstrap = settings.kafka_bootstrap()
    if kafka.security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT") and _listens(bootstrap):
        return (f"a server listens at {bootstrap} but closes the connection at the first "
                f"request: it probably wants TLS and/or SASL, and this client speaks "
                f"{kafka.security_protocol} (set RENDEZVOUS_KAFKA__SECURITY_PROTOCOL, e.g. "
                "SASL_SSL, and credentials)")
    if not _listens(bootstrap):
        return f"nothing accepts connections at {bootstrap}"
    return None


def _listens(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False
