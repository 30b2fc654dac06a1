"""The one settings object: where to connect and as whom, shared by every process, and
one section per component (``[kafka]``, ``[local]``, ``[serve]``, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rendezvous.errors import SettingsError
from rendezvous.settings.decoy import DecoySettings
from rendezvous.settings.gateway import GatewaySettings
from rendezvous.settings.kafka import KafkaSettings
from rendezvous.settings.local import LocalSettings
from rendezvous.settings.monitor import MonitorSettings
from rendezvous.settings.paths import (
    PACKAGE_DIR,
    SETTINGS_FILE,
    default_cache_dir,
    default_state_dir,
)
from rendezvous.settings.serve import ServeSettings
from rendezvous.settings.sources import ENV_PREFIX, ProjectFile, Renamed, RenamedEnv
from rendezvous.settings.worker import WorkerSettings

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"]


class Settings(BaseSettings):
    """Settings shared by every component; secrets are ``SecretStr`` and never printed."""

    # hide_input_in_errors: a refused value is never echoed (it may be a key or a password)
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", populate_by_name=True,
        env_nested_delimiter="__", toml_file=SETTINGS_FILE, hide_input_in_errors=True,
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment (new names, then old ones), then the working
        directory's ``rendezvous.toml``."""
        return (Renamed(settings_cls, init_settings), env_settings, RenamedEnv(settings_cls),
                dotenv_settings, file_secret_settings, ProjectFile(settings_cls))

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RENDEZVOUS_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    """Kafka bootstrap servers. Default unset: the broker ``rendezvous local up`` started
    (its endpoints file, which the CLI reads)."""

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("RENDEZVOUS_REDIS_URL", "REDIS_URL")
    )
    """Redis URL (``redis://host:port/0``). Default unset: the local one, as for Kafka."""

    redis_username: str | None = None
    """Redis ACL user. Default unset: the server's ``default`` user."""

    redis_password: SecretStr | None = None
    """Redis password, if the server asks for one. Default unset."""

    security_protocol: SecurityProtocol = "PLAINTEXT"
    """Kafka ``security.protocol`` (any case). Default ``PLAINTEXT``."""

    sasl_mechanism: SaslMechanism | None = None
    """Kafka ``sasl.mechanism`` (any case). Default unset."""

    sasl_username: str | None = None
    """SASL username. Default unset."""

    sasl_password: SecretStr | None = None
    """SASL password. Default unset."""

    ssl_ca_location: str | None = None
    """Path of the CA certificate that signed the brokers' certificates. Default unset:
    the system's CAs."""

    ssl_certificate_location: str | None = None
    """Path of this client's certificate (mutual TLS). Default unset."""

    ssl_key_location: str | None = None
    """Path of this client's private key (mutual TLS). Default unset."""

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    topic_prefix: str = "rendezvous."
    """Prefix of every topic and consumer group name; tests use a unique one each.
    Default ``rendezvous.``."""

    topics_file: Path = PACKAGE_DIR / "topics.yaml"
    """The topic declarations. Default: the ``topics.yaml`` shipped in the package."""

    models_dir: Path = PACKAGE_DIR / "models"
    """Directory holding ``<name>/<version>/model.onnx`` and ``model.yaml``. Default: the
    bundled models shipped in the package."""

    state_dir: Path = Field(default_factory=default_state_dir)
    """Where ``rendezvous local`` keeps broker data, logs, pids and endpoints, and the
    monitor its faust data. Default ``$XDG_STATE_HOME/rendezvous``."""

    cache_dir: Path = Field(default_factory=default_cache_dir)
    """Where downloads are cached (the Kafka jars, fetched once from Maven Central).
    Default ``$XDG_CACHE_HOME/rendezvous``."""

    default_deadline_ms: float = 50.0
    """Deadline of a request that names none, until the live policy sets one. Default 50."""

    metrics_port: int | None = None
    """Port of this process's HTTP endpoint (``/metrics``; the monitor's ``/windows`` too);
    0 = any free port (shown on the ready line). The same setting for every component;
    ``--metrics-port`` sets it. Default unset: off (the monitor: any free port)."""

    metrics_host: str = "127.0.0.1"
    """Address the ``/metrics`` (and monitor) HTTP endpoint binds; ``0.0.0.0`` in a
    container, so its published port is reachable. Default ``127.0.0.1``."""

    kafka: KafkaSettings = KafkaSettings()
    """Every Kafka client (env ``RENDEZVOUS_KAFKA__<FIELD>``)."""

    local: LocalSettings = LocalSettings()
    """``rendezvous local up`` (env ``RENDEZVOUS_LOCAL__<FIELD>``)."""

    gateway: GatewaySettings = GatewaySettings()
    """``rendezvous gateway`` (env ``RENDEZVOUS_GATEWAY__<FIELD>``)."""

    worker: WorkerSettings = WorkerSettings()
    """``rendezvous worker`` (env ``RENDEZVOUS_WORKER__<FIELD>``)."""

    serve: ServeSettings = ServeSettings()
    """``rendezvous serve`` (env ``RENDEZVOUS_SERVE__<FIELD>``)."""

    decoy: DecoySettings = DecoySettings()
    """``rendezvous decoy`` (env ``RENDEZVOUS_DECOY__<FIELD>``)."""

    monitor: MonitorSettings = MonitorSettings()
    """``rendezvous monitor`` (env ``RENDEZVOUS_MONITOR__<FIELD>``,
    ``RENDEZVOUS_MONITOR__THRESHOLDS__<FIELD>``)."""

    def topic(self, name: str) -> str:
        """The full name on the cluster of a topic (``input``, from ``topics.yaml``) or of
        a component's consumer group (``decoy``): ``topic_prefix`` + ``name``."""
        return f"{self.topic_prefix}{name}"

    group = topic
    """The same name: consumer groups share the topics' prefix."""

    def kafka_bootstrap(self) -> str:
        """The bootstrap address, or an error that says how to get one."""
        if not self.bootstrap_servers:
            raise SettingsError(
                "no Kafka to talk to: run `rendezvous local up`, "
                "or set KAFKA_BOOTSTRAP_SERVERS to an existing cluster"
            )
        return self.bootstrap_servers

    def redis(self) -> str:
        """The Redis URL, or an error that says how to get one."""
        if not self.redis_url:
            raise SettingsError("no Redis to talk to: run `rendezvous local up`, or set REDIS_URL")
        return self.redis_url

    def with_endpoints(self, bootstrap_servers: str | None, redis_url: str | None) -> Settings:
        """These settings, the endpoints that are unset filled in from the ones given."""
        return self.model_copy(update={
            "bootstrap_servers": self.bootstrap_servers or bootstrap_servers,
            "redis_url": self.redis_url or redis_url})
