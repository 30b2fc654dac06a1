"""``[kafka]``: which Kafka every component talks to, as whom, and how its clients batch
and fetch."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"]


class KafkaSettings(BaseModel):
    """Every component's Kafka clients (``RENDEZVOUS_KAFKA__*``; the bootstrap servers also
    ``KAFKA_BOOTSTRAP_SERVERS``). The batching and fetch knobs are paid at every hop of a
    request (input -> scores -> scored); ``bench/bench_knobs.py`` measures them."""

    # A refused value is never echoed in the error: it may be a password.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    bootstrap_servers: str | None = None
    """Kafka bootstrap servers. Default unset: the broker ``rendezvous local up`` started
    (the CLI reads its endpoints file)."""

    security_protocol: SecurityProtocol = "PLAINTEXT"
    """librdkafka ``security.protocol`` (any case). Default ``PLAINTEXT``."""

    sasl_mechanism: SaslMechanism | None = None
    """librdkafka ``sasl.mechanism`` (any case). Default unset."""

    sasl_username: str | None = None
    """SASL username. Default unset."""

    sasl_password: SecretStr | None = None
    """SASL password; never logged. Default unset."""

    ssl_ca_location: str | None = None
    """Path of the CA certificate that signed the brokers' certificates. Default unset: the
    system's CAs."""

    ssl_certificate_location: str | None = None
    """Path of this client's certificate (mutual TLS). Default unset."""

    ssl_key_location: str | None = None
    """Path of this client's private key (mutual TLS). Default unset."""

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    linger_ms: float = Field(default=2.0, ge=0)
    """How long a producer waits to batch records (librdkafka ``linger.ms``, whose own
    default is 5). Default 2."""

    fetch_wait_max_ms: int = Field(default=8, ge=0)
    """Longest a consumer's fetch waits at the broker for ``fetch_min_bytes`` (librdkafka
    ``fetch.wait.max.ms``); serve counts it in the time a result takes to reach its
    reader. Default 8."""

    fetch_min_bytes: int = Field(default=64 * 1024, ge=1)
    """The broker answers a fetch once this much is there, or after ``fetch_wait_max_ms``
    (librdkafka ``fetch.min.bytes``). 1 ends a fetch at every record: thousands of fetches
    a second per consumer, CPU a small machine does not have. Default 64 KiB."""
