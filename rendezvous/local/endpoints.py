"""The endpoints of the stack ``rendezvous local up`` started, as it records them in the
state directory: the CLI reads them once, for settings that name no Kafka or Redis."""

from __future__ import annotations

import json
from pathlib import Path

from rendezvous.settings import Settings


def endpoints_file(state_dir: Path) -> Path:
    """Where ``rendezvous local up`` writes its endpoints."""
    return state_dir / "endpoints.json"


def read_endpoints(state_dir: Path) -> dict[str, str]:
    """``bootstrap_servers`` and ``redis_url`` of the local stack; empty when none is
    recorded (or the file is unreadable)."""
    try:
        return dict(json.loads(endpoints_file(state_dir).read_text()))
    except (OSError, ValueError):
        return {}


def write_endpoints(state_dir: Path, bootstrap_servers: str, redis_url: str) -> None:
    """Record the local stack's endpoints for :func:`read_endpoints`."""
    endpoints_file(state_dir).write_text(
        json.dumps({"bootstrap_servers": bootstrap_servers, "redis_url": redis_url}, indent=2))


def with_local_endpoints(settings: Settings) -> Settings:
    """``settings``, the Kafka and Redis they leave unset taken from the local stack of
    their state directory (read here, once)."""
    given = settings.kafka.bootstrap_servers, settings.redis.url
    if all(given):
        return settings
    found = read_endpoints(settings.state_dir)
    return settings.with_endpoints(given[0] or found.get("bootstrap_servers"),
                                   given[1] or found.get("redis_url"))
