"""One typed, frozen settings object for every rendezvous process.

Every field can be set from the environment with the ``RENDEZVOUS_`` prefix
(``RENDEZVOUS_BOOTSTRAP_SERVERS=...``). ``KAFKA_BOOTSTRAP_SERVERS`` and
``REDIS_URL`` are honoured too, so an existing cluster is one variable away.
When neither is set, the endpoints written by ``rendezvous local up`` are used.

Below the environment, a project's settings file: ``rendezvous.toml`` in the working
directory (``rendezvous init`` writes one), any field by name, sections as tables
(``[worker]``); relative paths in it are relative to its directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rendezvous.errors import SettingsError

PACKAGE_DIR = Path(__file__).resolve().parent
"""The installed package: its ``topics.yaml`` and ``models/`` are the defaults, so every
command works from any directory."""

MIN_API_KEY_LENGTH = 16
"""The shortest API key the gateway accepts."""

SETTINGS_FILE = "rendezvous.toml"
"""A project's settings file, read from the working directory (below the environment)."""


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

    # A refused value is never echoed in the error: it may be an API key.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    model_name: str = "rendezvous"
    """The deployment's name in ``/v2/models/{name}``."""

    host: str = "127.0.0.1"
    """Address the HTTP server binds (``0.0.0.0`` in a container)."""

    port: int = 8000
    """HTTP port (0: any free port, printed on the ready line)."""

    api_keys: list[SecretStr] = []
    """Bearer tokens accepted in ``Authorization``; empty = no authentication. Never logged.
    Each at least :data:`MIN_API_KEY_LENGTH` characters (refused at start otherwise)."""

    @field_validator("api_keys")
    @classmethod
    def _long_enough(cls, keys: list[SecretStr]) -> list[SecretStr]:
        short = [i + 1 for i, key in enumerate(keys)
                 if len(key.get_secret_value().strip()) < MIN_API_KEY_LENGTH]
        if short:
            raise ValueError(
                f"API key {', '.join(f'#{i}' for i in short)} of {len(keys)} is shorter than "
                f"{MIN_API_KEY_LENGTH} characters (or empty): a short key can be guessed; "
                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")
        return keys

    metrics_public: bool = False
    """Serve ``/metrics`` without the key even when API keys are set (for a scraper that
    cannot send one); by default it needs the key like every route but the health probes."""

    allowed_hosts: list[str] | None = None
    """``Host`` header values the gateway answers (``*.example.com`` for subdomains, ``*``
    for any): a web page that rebinds its DNS name to this address is refused. Unset: the
    bind address, ``localhost``, ``127.0.0.1`` and ``::1`` (with a wildcard bind, also this
    machine's host name). ``/v2/health/*`` is answered for any host (probes)."""

    cors_origins: list[str] = []
    """Origins (``https://app.example.com``) whose web pages may call the gateway (CORS);
    empty = none: a request carrying another ``Origin`` is refused (403)."""

    max_concurrent: int = Field(default=64, ge=1)
    """Inference requests in the gateway at once (reading, waiting for results); one more
    is answered 503 with ``Retry-After`` before its body is read."""

    max_body_memory: int = Field(default=64 * 1024 * 1024, ge=16 * 1024 * 1024)
    """Bytes of large request bodies (over 1 MiB, or of unknown length) held at once, by
    their declared length; a large body that does not fit is answered 503 with
    ``Retry-After`` before it is read, so a flood of big bodies cannot take the memory (or
    the turn) of the small requests. At least the largest body, 16 MiB."""

    slack_ms: float = 10.0
    """How long after a request's deadline the gateway still waits for results before it
    answers the missing rows ``timeout`` itself: the Redis hop plus scheduling."""

    features_from: str = "primary"
    """Model whose manifest defines the inputs (feature names, order, dtypes)."""

    max_rows: int = 1000
    """Rows per inference request at most."""

    max_deadline_ms: float = 60_000.0
    """Longest deadline a request may ask for."""


class WorkerSettings(BaseModel):
    """``rendezvous worker``: micro-batching of one model worker (``RENDEZVOUS_WORKER__*``)."""

    model_config = ConfigDict(frozen=True)

    max_batch: int = Field(default=512, ge=1)
    """Most records scored in one inference call."""

    max_wait_ms: float = Field(default=2.0, ge=1)
    """Longest wait for the first record of a batch; the batch is what has arrived by
    then (up to ``max_batch``), so it grows with load. At least 1: librdkafka waits in
    whole milliseconds (less is no wait, a busy loop)."""

    delay_ms: float = Field(default=0.0, ge=0)
    """Artificial delay per batch before producing (a slow model, for fallback tests)."""

    lag_interval_s: float = Field(default=1.0, gt=0)
    """How often the consumer-lag gauge is sampled (from cached watermarks)."""

    score_key: SecretStr | None = None
    """This model's secret key (hex): each score is signed with it (:mod:`rendezvous.signing`)
    so that serve can tell it from another model's. None: scores are not signed."""


class ServeSettings(BaseModel):
    """``rendezvous serve``: the rendezvous loop (``RENDEZVOUS_SERVE__*``)."""

    model_config = ConfigDict(frozen=True)

    commit_interval_ms: float = Field(default=5.0, gt=0)
    """How often results are committed: latency against broker load."""

    max_batch: int = Field(default=1000, ge=1)
    """Records per poll at most."""

    max_wait_ms: float = Field(default=1.0, ge=1)
    """Longest poll when no deadline is near. Acknowledgements of results are seen between
    polls, and a reply to a return address leaves only once its result's is, so this is
    also how long an acknowledgement can wait to be seen (1 ms against 2 ms, measured: the
    gateway's p50 0.7 ms lower, and at 2,000/s 3 of 6 runs >= 99.9 % in time against 2,
    for 2 points more CPU). At least 1: librdkafka waits in whole milliseconds."""

    features_from: str = "primary"
    """Model whose manifest defines valid features; '' validates the structure only."""

    exactly_once: Literal["dedup", "transactions"] = "dedup"
    """dedup: results produced at once, offsets committed behind their acks;
    transactions: results and offsets commit atomically (~20-30 ms a commit)."""

    margin_min_ms: float = Field(default=2.0, ge=0)
    """Smallest delivery margin: a request is decided by its deadline less the time a
    result takes to reach its reader (serve's measured output path plus a reader's
    ``fetch_wait_max_ms``), at least this."""

    margin_max_ms: float = Field(default=20.0, ge=0)
    """Largest delivery margin (used until the output path is measured)."""

    stuck_commit_s: float = Field(default=30.0, gt=0)
    """A commit stuck this long will not finish: the process exits so a restart
    recovers from the committed state."""

    deadletter_max_bytes: int = Field(default=256 * 1024, ge=1)
    """A dead letter's value and key are cut to this (the full record is archived)."""

    min_deadline_ms: float = Field(default=1.0, gt=0)
    """Shortest ``deadline_ms`` a request may ask for: a shorter one counts as this (serve's
    loop waits in whole milliseconds; less would only make it spin). Workers use it too."""

    score_keys: dict[str, SecretStr] = Field(default_factory=dict)
    """Each model's secret key (hex; JSON in the environment): when set, a score is taken
    only when it is signed with the key of the model it names, so one model's worker cannot
    answer as another's; others are skipped and counted. Empty: every score is taken."""

    max_deadline_ms: float = Field(default=60_000.0, gt=0)
    """Longest ``deadline_ms`` a request may ask for, as the gateway's own maximum: a longer
    one counts as this, and no request is waited for longer than this after it arrives,
    whatever its ``ts`` or record timestamp say (a request that waits holds serve's
    committed input position back; a longer policy default holds as set). Workers use it
    too. Clamps are counted in ``rendezvous_serve_deadlines_clamped_total{bound}``
    (``min``, ``max``, ``future``)."""

    @field_validator("max_deadline_ms")
    @classmethod
    def _not_below_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_deadline_ms")
        if low is not None and value < low:
            raise ValueError(f"max_deadline_ms {value} is below min_deadline_ms {low}")
        return value


class DecoySettings(BaseModel):
    """``rendezvous decoy``: what is archived, where, how often files roll
    (``RENDEZVOUS_DECOY__*``)."""

    model_config = ConfigDict(frozen=True)

    archive: Path | None = None
    """Root directory of the Parquet archive (created if missing); required to run."""

    topics: tuple[str, ...] = ("input", "decisions")
    """Logical topics to record (``settings.topic(name)`` on the cluster)."""

    roll_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    """Roll when this many bytes (uncompressed, in memory) are buffered."""

    roll_seconds: float = Field(default=60.0, gt=0)
    """Roll when the oldest buffered record is this old."""

    batch_size: int = Field(default=10_000, ge=1)
    """Most records per poll."""

    poll_wait_s: float = Field(default=0.2, ge=0)
    """Longest wait of one poll."""

    compression: Literal["zstd", "snappy", "lz4", "gzip", "none"] = "zstd"
    """Parquet compression codec."""

    instance_id: str | None = None
    """Static group membership (``group.instance.id``): a restarted decoy takes its
    partitions back at once instead of after the session timeout."""

    niceness: int = Field(default=10, ge=0, le=19)
    """How much the decoy lowers its CPU priority (``nice``, and its Linux autogroup's
    when it leads its session, as the local stack starts it): it is off the latency path,
    and on a small machine the workers and serve must get the CPU first."""

    max_cpu: float = Field(default=0.25, gt=0, le=1.0)
    """Share of one core the decoy may use, rolls included (it pauses between batches and
    between row groups; 1.0 = never): its bursts of encoding stalled the hot path even
    niced (docs/benchmarks.md). It lags under a burst of load and catches up after."""

    fetch_min_bytes: int = Field(default=1024 * 1024, ge=1)
    """The broker answers the decoy's fetch once this much is there (or after
    ``fetch_wait_max_ms``): a few large fetches instead of one per record."""

    fetch_wait_max_ms: int = Field(default=250, ge=1)
    """Longest a fetch waits for ``fetch_min_bytes``."""

    redaction: Path | None = None
    """Redaction policy (YAML: ``drop``/``hash`` lists of input field paths) applied to
    input values before they are archived; unset = raw bytes. See the README."""

    redaction_key: SecretStr | None = None
    """HMAC secret of the policy's hashed fields. Never logged."""

    redaction_warn_after: int = Field(default=10_000, ge=1)
    """A redaction path (or header) that has matched nothing in this many redacted records
    is logged once as a warning (a misspelt path redacts nothing, silently)."""

    retention_hours: float | None = Field(default=None, gt=0)
    """Delete archive hours older than this (whole hour partitions, every topic, never one
    being written), checked after a roll at most every ``prune_interval_s``; unset = keep
    all (or run ``rendezvous archive prune`` yourself)."""

    prune_interval_s: float = Field(default=600.0, gt=0)
    """How often the decoy applies ``retention_hours``."""


class Thresholds(BaseModel):
    """When a closed monitor window raises an alert; ``None`` disables a cause
    (``RENDEZVOUS_MONITOR__THRESHOLDS__*``)."""

    model_config = ConfigDict(frozen=True)

    max_psi: float | None = 0.25
    """Drift alert when a feature's PSI exceeds this."""

    max_disagreement: float | None = 0.2
    """Alert when canary and primary disagree on more than this fraction."""

    max_timeout_rate: float | None = 0.05
    """Alert when more than this fraction of decisions timed out."""

    max_p99_ms: float | None = None
    """Alert when a model's p99 latency exceeds this (off unless set)."""

    min_samples: int = Field(default=100, ge=1)
    """Fewer observations than this in a window never alert (too noisy to judge)."""


class MonitorSettings(BaseModel):
    """``rendezvous monitor``: windows, drift and alerts (``RENDEZVOUS_MONITOR__*``)."""

    model_config = ConfigDict(frozen=True)

    window_s: float = Field(default=60.0, ge=0.5)
    """Length of the tumbling windows, seconds."""

    grace_s: float = Field(default=2.0, ge=0)
    """How long after its end a window is judged for alerts."""

    sample: float = Field(default=1.0, gt=0, le=1)
    """Fraction of requests aggregated (by id hash)."""

    thresholds: Thresholds = Thresholds()
    """When a window alerts."""

    primary: str = "primary"
    """The primary model."""

    canary: str = "canary"
    """The canary model."""

    reference_model: str = "primary"
    """Model whose manifest (newest version) is the drift reference."""

    keep_windows: int = Field(default=10, ge=1)
    """How many past windows are kept (and served)."""

    join_ttl_s: float = Field(default=600.0, ge=1)
    """How long a decision waits for its feedback label (and vice versa)."""

    flush_s: float = Field(default=0.25, gt=0)
    """How often the state is published to HTTP and persisted."""

    replication_factor: int = Field(default=1, ge=1)
    """Replication factor of the changelog topic faust creates."""

    niceness: int = Field(default=10, ge=0, le=19)
    """How much the monitor lowers its CPU priority (``nice``, and its Linux autogroup's
    when it leads its session, as the local stack starts it): it is off the latency path."""

    max_cpu: float = Field(default=0.15, gt=0, le=1)
    """Most of one core the monitor uses; beyond it the monitor lags (its lag gauge says
    so) and catches up when the load drops, so the hot path keeps its CPU."""

    fetch_min_bytes: int = Field(default=256 * 1024, ge=1)
    """The broker answers the monitor's fetch once this much is there (or after
    ``fetch_wait_max_ms``): a few large fetches instead of one per record."""

    fetch_wait_max_ms: int = Field(default=1000, ge=1)
    """Longest the monitor's fetch of inputs and decisions waits for ``fetch_min_bytes``
    (feedback and the changelog: faust's 1.5 s)."""


class ProjectFile(TomlConfigSettingsSource):
    """``rendezvous.toml`` of the working directory, its relative paths made absolute from
    there (top-level fields and one section deep)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        try:
            super().__init__(settings_cls)
        except ValueError as exc:  # tomllib.TOMLDecodeError
            raise SettingsError(f"{Path(SETTINGS_FILE).resolve()} is not valid TOML: {exc}"
                                ) from None

    def __call__(self) -> dict[str, Any]:
        base = Path(SETTINGS_FILE).resolve().parent

        def resolved(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
            for name, field in model.model_fields.items():
                value, kind = values.get(name), field.annotation
                if isinstance(value, str) and Path in (kind, *getattr(kind, "__args__", ())):
                    values[name] = str(base / Path(value).expanduser())
                elif isinstance(value, dict) and model is self.settings_cls and isinstance(
                        kind, type) and issubclass(kind, BaseModel):
                    values[name] = resolved(kind, dict(value))
            return values

        return resolved(self.settings_cls, super().__call__())


class Settings(BaseSettings):
    """Settings shared by every component; secrets are ``SecretStr`` and never printed."""

    # hide_input_in_errors: a refused value is never echoed (it may be a key or a password)
    model_config = SettingsConfigDict(
        env_prefix="RENDEZVOUS_", frozen=True, extra="ignore", populate_by_name=True,
        env_nested_delimiter="__", toml_file=SETTINGS_FILE, hide_input_in_errors=True,
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the working directory's ``rendezvous.toml``."""
        return (init_settings, env_settings, dotenv_settings, file_secret_settings,
                ProjectFile(settings_cls))

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RENDEZVOUS_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    """Kafka bootstrap servers; unset means: the broker started by ``rendezvous local up``."""

    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("RENDEZVOUS_REDIS_URL", "REDIS_URL")
    )
    """Redis URL (``redis://host:port/0``); unset means: the local one."""

    redis_username: str | None = None
    """Redis ACL user (unset: the server's ``default`` user)."""

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
    """Port of this process's HTTP endpoint (``/metrics``; the monitor's ``/windows`` too);
    0 = any free port (shown on the ready line); unset = off (the monitor: any free port).
    The same setting for every component; ``--metrics-port`` sets it."""

    metrics_host: str = "127.0.0.1"
    """Address the ``/metrics`` (and monitor) HTTP endpoint binds; ``0.0.0.0`` in a
    container, so its published port is reachable."""

    fetch_wait_max_ms: int = Field(default=8, ge=0)
    """Longest a consumer's fetch waits at the broker for ``fetch_min_bytes`` (librdkafka
    ``fetch.wait.max.ms``): paid at most once per hop. Measured in docs/benchmarks.md."""

    fetch_min_bytes: int = Field(default=64 * 1024, ge=1)
    """The broker answers a fetch once this much is there (``fetch.min.bytes``). With 1,
    every record ends a fetch: thousands of fetches a second per consumer, which cost more
    CPU on a 2-core machine than they saved in latency (measured)."""

    linger_ms: float = Field(default=2.0, ge=0)
    """How long a producer waits to batch records (librdkafka ``linger.ms``, default 5 there):
    paid at every hop, input -> scores -> scored."""

    kafka_heap: str = "512m"
    """Heap of the local broker's JVM (``-Xmx``), at most 1 GiB on a small machine."""

    local_brokers: int = Field(default=1, ge=1, le=9)
    """Brokers of ``rendezvous local up`` (``--brokers``): 1, or a replicated KRaft cluster
    (3: replication factor 3, ``min.insync.replicas`` 2), each broker with
    ``cluster_heap`` instead of ``kafka_heap``."""

    cluster_heap: str = "256m"
    """Heap of each broker's JVM in a local cluster of more than one broker."""

    kafka_gc: str = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20"
    """Garbage-collector options of the local broker's JVM: its pauses stop every hop of
    the pipeline at once. G1 with 20 ms pauses was kept after G1 with one GC thread and
    ZGC made no clear difference at 2,000 requests/s (measured in an ad hoc A/B, d2d10c5;
    not in docs/benchmarks.md)."""

    kafka_network_threads: int = Field(default=1, ge=1)
    """The local broker's network threads (``num.network.threads``, Kafka's default 3).
    Every request goes from a network thread to an I/O thread and back; on a small
    machine fewer threads meant fewer of those wake-ups and less CPU for the same work
    (measured in docs/benchmarks.md)."""

    kafka_io_threads: int = Field(default=2, ge=1)
    """The local broker's request handler threads (``num.io.threads``, Kafka's default 8).
    Two rather than one: a slow request does not hold up every other."""

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

    def faust_datadir(self, app: str) -> Path:
        """The data directory of faust app ``app``, created: under the state directory
        (faust's default is the working directory, and it does not create it)."""
        path = self.state_dir / app / self.group(app)
        path.mkdir(parents=True, exist_ok=True)
        return path

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
        return redis.Redis.from_url(self.redis(), username=self.redis_username,
                                    password=password)
