"""``[monitor]``: windows, drift and alerts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Thresholds(BaseModel):
    """When a closed monitor window raises an alert; ``None`` disables a cause
    (``RENDEZVOUS_MONITOR__THRESHOLDS__*``)."""

    model_config = ConfigDict(frozen=True)

    max_psi: float | None = 0.25
    """Drift alert when a feature's PSI exceeds this. Default 0.25."""

    max_disagreement: float | None = 0.2
    """Alert when canary and primary disagree on more than this fraction. Default 0.2."""

    max_timeout_rate: float | None = 0.05
    """Alert when more than this fraction of decisions timed out. Default 0.05."""

    max_p99_ms: float | None = None
    """Alert when a model's p99 latency exceeds this (off unless set). Default unset."""

    min_samples: int = Field(default=100, ge=1)
    """Fewer observations than this in a window never alert (too noisy to judge).
    Default 100."""


class MonitorSettings(BaseModel):
    """``rendezvous monitor``: windows, drift and alerts (``RENDEZVOUS_MONITOR__*``)."""

    model_config = ConfigDict(frozen=True)

    window_s: float = Field(default=60.0, ge=0.5)
    """Length of the tumbling windows, seconds. Default 60."""

    grace_s: float = Field(default=2.0, ge=0)
    """How long after its end a window is judged for alerts. Default 2."""

    sample: float = Field(default=1.0, gt=0, le=1)
    """Fraction of requests aggregated (by id hash). Default 1 (every request)."""

    thresholds: Thresholds = Thresholds()
    """When a window alerts."""

    primary: str = "primary"
    """The primary model. Default ``primary``."""

    canary: str = "canary"
    """The canary model. Default ``canary``."""

    reference_model: str = "primary"
    """Model whose manifest (newest version) is the drift reference. Default ``primary``."""

    keep_windows: int = Field(default=10, ge=1)
    """How many past windows are kept (and served). Default 10."""

    join_ttl_s: float = Field(default=600.0, ge=1)
    """How long a decision waits for its feedback label (and vice versa). Default 600."""

    flush_s: float = Field(default=0.25, gt=0)
    """How often the state is published to HTTP and persisted. Default 0.25."""

    replication_factor: int = Field(default=1, ge=1)
    """Replication factor of the changelog topic faust creates. Default 1."""

    niceness: int = Field(default=10, ge=0, le=19)
    """How much the monitor lowers its CPU priority (``nice``, and its Linux autogroup's
    when it leads its session, as the local stack starts it): it is off the latency path.
    Default 10."""

    max_cpu: float = Field(default=0.15, gt=0, le=1)
    """Most of one core the monitor uses; beyond it the monitor lags (its lag gauge says
    so) and catches up when the load drops, so the hot path keeps its CPU. Default 0.15."""

    fetch_min_bytes: int = Field(default=256 * 1024, ge=1)
    """The broker answers the monitor's fetch once this much is there (or after
    ``fetch_wait_max_ms``): a few large fetches instead of one per record. Default 256 KiB."""

    fetch_wait_max_ms: int = Field(default=1000, ge=1)
    """Longest the monitor's fetch of inputs and decisions waits for ``fetch_min_bytes``
    (feedback and the changelog: faust's 1.5 s). Default 1000."""
