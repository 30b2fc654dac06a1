"""topics.yaml: the declared topics, and creating/validating them on the cluster."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from rendezvous.settings import Settings
from rendezvous.transport.connect import kafka_config
from rendezvous.transport.errors import TopicMismatch, TransportError


@dataclass(frozen=True)
class TopicSpec:
    """One declared topic: logical name, full name, partitions and config."""

    name: str
    full_name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)

    @property
    def cleanup_policy(self) -> str:
        return self.config.get("cleanup.policy", "delete")


def load_specs(settings: Settings) -> dict[str, TopicSpec]:
    """The declarations of ``settings.topics_file``, validated, by logical name."""
    path = Path(settings.topics_file)
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TransportError(f"cannot read {path}: {exc}; run from the project root "
                             "or set RENDEZVOUS_TOPICS_FILE") from exc
    defaults = doc.get("defaults") or {}
    replication = int(defaults.get("replication_factor", -1))
    min_insync = defaults.get("min_insync_replicas")
    specs = {
        name: TopicSpec(
            name=name,
            full_name=settings.topic(name),
            partitions=int(body["partitions"]),
            replication_factor=int(body.get("replication_factor", replication)),
            config={**({"min.insync.replicas": str(min_insync)} if min_insync else {}),
                    **{k: str(v) for k, v in (body.get("config") or {}).items()}},
        )
        for name, body in doc["topics"].items()
    }
    counts = {specs[n].partitions for n in doc.get("co_partitioned", [])}
    if len(counts) > 1:
        raise TransportError(f"{path}: co_partitioned topics must share one partition count")
    return specs


def apply_topics(settings: Settings, specs: dict[str, TopicSpec] | None = None) -> list[str]:
    """Create missing topics and check existing ones; returns the names created.

    Raises :class:`TopicMismatch` when an existing topic's partition count or
    cleanup policy differs from its declaration (nothing is changed then).
    """
    specs = specs or load_specs(settings)
    admin = AdminClient(kafka_config(settings))
    existing = admin.list_topics(timeout=10).topics
    _check_existing(admin, [s for s in specs.values() if s.full_name in existing], existing)
    missing = [s for s in specs.values() if s.full_name not in existing]
    if not missing:
        return []
    default_rf = _default_replication(admin) \
        if any(s.replication_factor <= 0 for s in missing) else 1
    futures = admin.create_topics(
        [NewTopic(s.full_name, s.partitions, s.replication_factor,
                  config=_within_replication(s, default_rf)) for s in missing],
        operation_timeout=30,
    )
    raced = []  # created meanwhile by someone else, or not yet in our metadata
    for spec in missing:
        try:
            futures[spec.full_name].result()
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise TransportError(f"creating topic {spec.full_name} failed: {exc}") from exc
            raced.append(spec)
    if raced:
        _check_existing(admin, raced, _wait_visible(admin, raced))
        missing = [s for s in missing if s not in raced]
    return [s.full_name for s in missing]


def _within_replication(spec: TopicSpec, default_rf: int) -> dict[str, str]:
    """``spec.config`` with ``min.insync.replicas`` at most the replication factor the topic
    gets (else no write with acks=all could succeed): its own, or the cluster's default."""
    config = dict(spec.config)
    wanted = config.get("min.insync.replicas")
    if wanted is None:
        return config
    replicas = spec.replication_factor if spec.replication_factor > 0 else default_rf
    config["min.insync.replicas"] = str(max(1, min(int(wanted), replicas)))
    return config


def _default_replication(admin: AdminClient) -> int:
    """The cluster's ``default.replication.factor`` (as one of its brokers says)."""
    broker = next(iter(admin.list_topics(timeout=10).brokers))
    resource = ConfigResource(ConfigResource.Type.BROKER, str(broker))
    configs = admin.describe_configs([resource])[resource].result()
    return int(configs["default.replication.factor"].value)


def _check_existing(admin: AdminClient, specs: list[TopicSpec], existing: dict) -> None:
    problems = []
    for spec in specs:
        actual = len(existing[spec.full_name].partitions)
        if actual != spec.partitions:
            problems.append(f"{spec.full_name} has {actual} partitions, topics.yaml "
                            f"declares {spec.partitions}")
    if specs:
        resources = [ConfigResource(ConfigResource.Type.TOPIC, s.full_name) for s in specs]
        configs = {r.name: f.result() for r, f in admin.describe_configs(resources).items()}
        for spec in specs:
            actual_policy = configs[spec.full_name]["cleanup.policy"].value
            if actual_policy != spec.cleanup_policy:
                problems.append(f"{spec.full_name} has cleanup.policy={actual_policy}, "
                                f"topics.yaml declares {spec.cleanup_policy}")
    if problems:
        raise TopicMismatch(
            "existing topics differ from topics.yaml: " + "; ".join(problems)
            + ". Fix topics.yaml, or delete and re-create the topic (its data is lost), "
            "or use another RENDEZVOUS_TOPIC_PREFIX."
        )


def _wait_visible(admin: AdminClient, specs: list[TopicSpec], timeout_s: float = 10) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        topics = admin.list_topics(timeout=timeout_s).topics
        if all(s.full_name in topics for s in specs) or time.monotonic() > deadline:
            return topics
        time.sleep(0.1)


def describe_topics(settings: Settings) -> list[tuple[str, str, int | None, str]]:
    """(logical name, full name, partitions on the cluster or None if absent, policy)."""
    specs = load_specs(settings)
    existing = AdminClient(kafka_config(settings)).list_topics(timeout=10).topics
    return [
        (s.name, s.full_name,
         len(existing[s.full_name].partitions) if s.full_name in existing else None,
         s.cleanup_policy)
        for s in specs.values()
    ]
