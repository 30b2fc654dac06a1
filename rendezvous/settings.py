"""One typed, frozen settings object for every rendezvous process.

Every field can be set from the environment with the ``RENDEZVOUS_`` prefix
(``RENDEZVOUS_BOOTSTRAP_SERVERS=...``). ``KAFKA_BOOTSTRAP_SERVERS`` and
``REDIS_URL`` are honoured too, so an existing cluster is one variable away.
When neither is set, the endpoints written by ``rendezvous local up`` are used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from rendezvous.errors import SettingsError

PACKAGE_DIR = Path(__file__).resolve().parent
"""The installed package: its ``topics.yaml`` and ``models/`` are the defaults, so every
command works from any directory."""


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "rendezvous"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rendezvous"


class GatewaySettings(BaseModel):
    """``rendezvous gateway``: the HTTP (Open Inference Protocol v2) front door.

    From the environment: ``RENDEZVOUS_GATEWAY__PORT=8000``,
    ``RENDEZVOUS_GATEWAY__API_KEYS='["key1", "key2"]'``, ...
    """

    model_config = ConfigDict(frozen=True)

    model_name: str = "rendezvous"
    """The deployment's name in ``/v2/models/{name}``."""

    host: str = "127.0.0.1"
    """Address the HTTP server binds (``0.0.0.0`` in a container)."""

    port: int = 8000
    """HTTP port (0: any free port, printed on the ready line)."""

    api_keys: list[SecretStr] = []
    """Bearer tokens accepted in ``Authorization``; empty = no authentication. Never logged."""

    slack_ms: float = 10.0
    """How long after a request's deadline the gateway still waits for results before it
    answers the missing rows ``timeout`` itself: the Redis hop plus scheduling."""

    features_from: str = "primary"
    """Model whose manifest defines the inputs (feature names, order, dtypes)."""

    max_rows: int = 1000
    """Rows per inference request at most."""

    max_deadline_ms: float = 60_000.0
    """Longest deadline a request may ask for."""


class Settings(BaseSettings):
    """Settings shared by every component; secrets are ``SecretStr`` and never printed."""

    model_config = SettingsConfigDict(
        env_prefix="RENDEZVOUS_", frozen=True, extra="ignore", populate_by_name=True,
        env_nested_delimiter="__",
    )

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RENDEZVOUS_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    """Kafka bootstrap servers; unset means: the broker started by ``rendezvous local up``."""

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("RENDEZVOUS_REDIS_URL", "REDIS_URL")
    )
    """Redis URL (``redis://host:port/0``); unset means: the local one."""

    redis_password: SecretStr | None = None
    """Redis password, if the server asks for one."""

    security_protocol: str = "PLAINTEXT"
    """Kafka ``security.protocol``: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""

    sasl_mechanism: str | None = None
    """Kafka ``sasl.mechanism``, e.g. PLAIN or SCRAM-SHA-512."""

    sasl_username: str | None = None
    """SASL username."""

    sasl_password: SecretStr | None = None
    """SASL password."""

    ssl_ca_location: str | None = None
    """Path of the CA certificate that signed the brokers' certificates."""

    ssl_certificate_location: str | None = None
    """Path of this client's certificate (mutual TLS)."""

    ssl_key_location: str | None = None
    """Path of this client's private key (mutual TLS)."""

    topic_prefix: str = "rendezvous."
    """Prefix of every topic and consumer group name; tests use a unique one each."""

    topics_file: Path = PACKAGE_DIR / "topics.yaml"
    """The topic declarations; default: the ``topics.yaml`` shipped in the package."""

    models_dir: Path = PACKAGE_DIR / "models"
    """Directory holding ``<name>/<version>/model.onnx`` and ``model.yaml``; default: the
    bundled models shipped in the package."""

    state_dir: Path = Field(default_factory=_default_state_dir)
    """Where ``rendezvous local`` keeps broker data, logs, pids and endpoints."""

    cache_dir: Path = Field(default_factory=_default_cache_dir)
    """Where the Kafka jars are cached (fetched once from Maven Central)."""

    default_deadline_ms: float = 50.0
    """Deadline of a request that names none, until the live policy sets one."""

    metrics_port: int | None = None
    """Port of this process's Prometheus ``/metrics`` (on 127.0.0.1); unset = off."""

    kafka_heap: str = "512m"
    """Heap of the local broker's JVM (``-Xmx``), at most 1 GiB on a small machine."""

    gateway: GatewaySettings = GatewaySettings()
    """``rendezvous gateway`` (env ``RENDEZVOUS_GATEWAY__<FIELD>``)."""

    def topic(self, name: str) -> str:
        """The full topic name of a logical topic from ``topics.yaml``."""
        return f"{self.topic_prefix}{name}"

    def group(self, name: str) -> str:
        """The consumer group of one component."""
        return f"{self.topic_prefix}{name}"

    @property
    def endpoints_file(self) -> Path:
        return self.state_dir / "endpoints.json"

    def _local_endpoints(self) -> dict[str, str]:
        try:
            return dict(json.loads(self.endpoints_file.read_text()))
        except (OSError, ValueError):
            return {}

    def kafka_bootstrap(self) -> str:
        """The bootstrap address, or an error that says how to get one."""
        found = self.bootstrap_servers or self._local_endpoints().get("bootstrap_servers")
        if not found:
            raise SettingsError(
                "no Kafka to talk to: run `rendezvous local up`, "
                "or set KAFKA_BOOTSTRAP_SERVERS to an existing cluster"
            )
        return found

    def redis(self) -> str:
        """The Redis URL, or an error that says how to get one."""
        found = self.redis_url or self._local_endpoints().get("redis_url")
        if not found:
            raise SettingsError(
                "no Redis to talk to: run `rendezvous local up`, or set REDIS_URL"
            )
        return found

    def kafka_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka configuration for any client: bootstrap, security, then ``extra``.

        Every Producer, Consumer and AdminClient is built from this, so ``logger`` here
        routes all of librdkafka's log lines through Python logging (one format).
        """
        from rendezvous.logs import KAFKA_LOGGER

        conf: dict[str, Any] = {
            "bootstrap.servers": self.kafka_bootstrap(),
            "security.protocol": self.security_protocol,
            "logger": KAFKA_LOGGER,
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
        }
        conf.update({k: v for k, v in optional.items() if v is not None})
        conf.update(extra)
        return conf

    def redis_client(self) -> Any:
        """A ``redis.Redis`` client for this deployment."""
        import redis

        password = self.redis_password.get_secret_value() if self.redis_password else None
        return redis.Redis.from_url(self.redis(), password=password)
