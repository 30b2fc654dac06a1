"""The broker and Redis a benchmark runs against: ``KAFKA_BOOTSTRAP_SERVERS`` /
``REDIS_URL`` when set (``make bench`` starts one stack for every section), else a
local stack started here and stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from rendezvous import local
from rendezvous.settings import Settings
from rendezvous.transport.topics import apply_topics

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def bench_settings(name: str) -> Iterator[Settings]:
    """Settings with fresh topics (prefix ``<name><uuid>.``) on a running broker and Redis."""
    with tempfile.TemporaryDirectory(prefix="rendezvous-bench-") as tmp:
        given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("REDIS_URL")
        base = Settings(state_dir=Path(tmp) / "state")
        if not given:
            print(f"{name}: starting a local Kafka + Redis...", file=sys.stderr)
            local.up(base)
        try:
            settings = base.model_copy(update={
                "bootstrap_servers": base.kafka_bootstrap(),
                "redis_url": base.redis(),
                "topic_prefix": f"{name}{uuid.uuid4().hex[:8]}.",
                "topics_file": REPO / "topics.yaml",
                "models_dir": REPO / "models",
            })
            apply_topics(settings)
            yield settings
        finally:
            if not given:
                local.down(base)


def broker_description() -> str:
    return ("an existing broker" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
            else "a local single-node broker (KRaft)")
