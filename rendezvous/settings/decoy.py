"""``[decoy]``: what the decoy archives, where, and how often its files roll."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class DecoySettings(BaseModel):
    """``rendezvous decoy``: what is archived, where, how often files roll
    (``RENDEZVOUS_DECOY__*``)."""

    model_config = ConfigDict(frozen=True)

    archive: Path | None = None
    """Root directory of the Parquet archive (created if missing); required to run.
    Default unset."""

    topics: tuple[str, ...] = ("input", "decisions")
    """Logical topics to record (``settings.topic(name)`` on the cluster).
    Default ``input`` and ``decisions``."""

    roll_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    """Roll when this many bytes (uncompressed, in memory) are buffered. Default 64 MiB."""

    roll_seconds: float = Field(default=60.0, gt=0)
    """Roll when the oldest buffered record is this old. Default 60."""

    batch_size: int = Field(default=10_000, ge=1)
    """Most records per poll. Default 10,000."""

    poll_wait_s: float = Field(default=0.2, ge=0)
    """Longest wait of one poll. Default 0.2."""

    compression: Literal["zstd", "snappy", "lz4", "gzip", "none"] = "zstd"
    """Parquet compression codec. Default ``zstd``."""

    instance_id: str | None = None
    """Static group membership (``group.instance.id``): a restarted decoy takes its
    partitions back at once instead of after the session timeout.
    Default unset (dynamic membership)."""

    niceness: int = Field(default=10, ge=0, le=19)
    """How much the decoy lowers its CPU priority (``nice``, and its Linux autogroup's
    when it leads its session, as the local stack starts it): it is off the latency path,
    and on a small machine the workers and serve must get the CPU first. Default 10."""

    max_cpu: float = Field(default=0.25, gt=0, le=1.0)
    """Share of one core the decoy may use, rolls included (it pauses between batches and
    between row groups; 1.0 = never pauses), so its bursts of encoding do not take the
    hot path's CPU; it lags under a burst of load and catches up after. Default 0.25."""

    fetch_min_bytes: int = Field(default=1024 * 1024, ge=1)
    """The broker answers the decoy's fetch once this much is there (or after
    ``fetch_wait_max_ms``): a few large fetches instead of one per record. Default 1 MiB."""

    fetch_wait_max_ms: int = Field(default=250, ge=1)
    """Longest a fetch waits for ``fetch_min_bytes``. Default 250."""

    redaction: Path | None = None
    """Redaction policy (YAML: ``drop``/``hash`` lists of input field paths) applied to
    input values before they are archived; unset = raw bytes. See the README. Default unset."""

    redaction_key: SecretStr | None = None
    """HMAC secret of the policy's hashed fields. Never logged. Default unset."""

    redaction_warn_after: int = Field(default=10_000, ge=1)
    """A redaction path (or header) that has matched nothing in this many redacted records
    is logged once as a warning (a misspelt path redacts nothing, silently). Default 10,000."""

    retention_hours: float | None = Field(default=None, gt=0)
    """Delete archive hours older than this (whole hour partitions, every topic, never one
    being written), checked after a roll at most every ``prune_interval_s``; unset = keep
    all (or run ``rendezvous archive prune`` yourself). Default unset."""

    prune_interval_s: float = Field(default=600.0, gt=0)
    """How often the decoy applies ``retention_hours``. Default 600."""
