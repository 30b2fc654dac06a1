"""A benchmark's own Kafka and Redis: the stack ``make bench`` leased (through the
environment), else a local one in a temporary directory; and topics of its own on it."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from rendezvous.demo.stack import Stack, lease
from rendezvous.settings import Settings
from rendezvous.transport.topics import apply_topics


def _quiet(_text: str) -> None:
    pass


@contextlib.contextmanager
def scratch(name: str, say: Callable[[str], None] = _quiet) -> Iterator[Stack]:
    """A lease whose local stack, if one is started, lives in a temporary directory."""
    with (tempfile.TemporaryDirectory(prefix=f"rendezvous-{name}-") as tmp,
          lease(Settings(state_dir=Path(tmp) / "state"), say) as stack):
        yield stack


def fresh_topics(settings: Settings, name: str) -> Settings:
    """``settings`` with topics of their own (prefix ``<name><uuid>.``), created."""
    own = settings.model_copy(update={"topic_prefix": f"{name}{uuid.uuid4().hex[:8]}."})
    apply_topics(own)
    return own


@contextlib.contextmanager
def scratch_settings(name: str, say: Callable[[str], None] = _quiet) -> Iterator[Settings]:
    """Settings with fresh topics on the leased Kafka and Redis (see :func:`scratch`)."""
    with scratch(name, say) as stack:
        yield fresh_topics(stack.settings(Settings()), name)
