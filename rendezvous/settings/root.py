"""The one settings object: what every process shares (names, paths, metrics), and one
section per part (``[kafka]``, ``[redis]``, ``[local]``, ``[serve]``, ...)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
from rendezvous.settings.redis import RedisSettings
from rendezvous.settings.serve import ServeSettings
from rendezvous.settings.sources import ENV_PREFIX, ProjectFile, Renamed, RenamedEnv
from rendezvous.settings.worker import WorkerSettings

LOCAL_IN_PYTHON = " (from Python: rendezvous.local.endpoints.with_local_endpoints)"
"""How a Python caller finds a running local stack (the CLI does it by itself)."""


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

    redis: RedisSettings = RedisSettings()
    """Every Redis client (env ``RENDEZVOUS_REDIS__<FIELD>``)."""

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
        if not self.kafka.bootstrap_servers:
            raise SettingsError(
                "no Kafka to talk to: run `rendezvous local up`, "
                f"or set KAFKA_BOOTSTRAP_SERVERS to an existing cluster{LOCAL_IN_PYTHON}"
            )
        return self.kafka.bootstrap_servers

    def redis_url(self) -> str:
        """The Redis URL, or an error that says how to get one."""
        if not self.redis.url:
            raise SettingsError("no Redis to talk to: run `rendezvous local up`, "
                                f"or set REDIS_URL{LOCAL_IN_PYTHON}")
        return self.redis.url

    def with_endpoints(self, bootstrap_servers: str | None, redis_url: str | None) -> Settings:
        """These settings pointed at this Kafka and this Redis."""
        return self.model_copy(update={
            "kafka": self.kafka.model_copy(update={"bootstrap_servers": bootstrap_servers}),
            "redis": self.redis.model_copy(update={"url": redis_url})})
