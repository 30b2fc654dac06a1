"""``[worker]``: micro-batching of one model worker."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class WorkerSettings(BaseModel):
    """``rendezvous worker``: micro-batching of one model worker (``RENDEZVOUS_WORKER__*``)."""

    model_config = ConfigDict(frozen=True)

    max_batch: int = Field(default=512, ge=1)
    """Most records scored in one inference call. Default 512."""

    max_wait_ms: float = Field(default=2.0, ge=1)
    """Longest wait for the first record of a batch; the batch is what has arrived by
    then (up to ``max_batch``), so it grows with load. At least 1: librdkafka waits in
    whole milliseconds (less is no wait, a busy loop). Default 2."""

    delay_ms: float = Field(default=0.0, ge=0)
    """Artificial delay per batch before producing (a slow model, for fallback tests).
    Default 0."""

    lag_interval_s: float = Field(default=1.0, gt=0)
    """How often the consumer-lag gauge is sampled (from cached watermarks). Default 1."""

    score_key: SecretStr | None = None
    """This model's secret key (hex): each score is signed with it (:mod:`rendezvous.signing`)
    so that serve can tell it from another model's. Default none: scores are not signed."""
