"""``[serve]``: the rendezvous loop."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator


class ServeSettings(BaseModel):
    """``rendezvous serve``: the rendezvous loop (``RENDEZVOUS_SERVE__*``)."""

    model_config = ConfigDict(frozen=True)

    commit_interval_ms: float = Field(default=5.0, gt=0)
    """How often results are committed: latency against broker load. Default 5."""

    max_batch: int = Field(default=1000, ge=1)
    """Records per poll at most. Default 1000."""

    max_wait_ms: float = Field(default=1.0, ge=1)
    """Longest poll when no deadline is near. Acknowledgements of results are seen between
    polls and a reply to a return address leaves only once its result's is, so this is
    also how long a reply can wait for its acknowledgement. At least 1: librdkafka waits
    in whole milliseconds. Default 1."""

    features_from: str = "primary"
    """Model whose manifest defines valid features; '' validates the structure only.
    Default ``primary``."""

    exactly_once: Literal["dedup", "transactions"] = "dedup"
    """dedup: results produced at once, offsets committed behind their acks;
    transactions: results and offsets commit atomically (~20-30 ms a commit).
    Default ``dedup``."""

    margin_min_ms: float = Field(default=2.0, ge=0)
    """Smallest delivery margin: a request is decided by its deadline less the time a
    result takes to reach its reader (the time serve observes on its output path plus a
    reader's ``fetch_wait_max_ms``), at least this. Default 2."""

    margin_max_ms: float = Field(default=20.0, ge=0)
    """Largest delivery margin (used until serve has timed its output path). Default 20."""

    stuck_commit_s: float = Field(default=30.0, gt=0)
    """A commit stuck this long will not finish: the process exits so a restart
    recovers from the committed state. Default 30."""

    deadletter_max_bytes: int = Field(default=256 * 1024, ge=1)
    """A dead letter's value and key are cut to this (the full record is archived).
    Default 256 KiB."""

    min_deadline_ms: float = Field(default=1.0, gt=0)
    """Shortest ``deadline_ms`` a request may ask for: a shorter one counts as this (serve's
    loop waits in whole milliseconds; less would only make it spin). Workers use it too.
    Default 1."""

    score_keys: dict[str, SecretStr] = Field(default_factory=dict)
    """Each model's secret key (hex; JSON in the environment): when set, a score is taken
    only when it is signed with the key of the model it names, so one model's worker cannot
    answer as another's; others are skipped and counted. Default empty: every score is
    taken."""

    max_deadline_ms: float = Field(default=60_000.0, gt=0)
    """Longest ``deadline_ms`` a request may ask for, as the gateway's own maximum: a longer
    one counts as this, and no request is waited for longer than this after it arrives,
    whatever its ``ts`` or record timestamp say (a request that waits holds serve's
    committed input position back; a longer policy default holds as set). Workers use it
    too. Clamps are counted in ``rendezvous_serve_deadlines_clamped_total{bound}``
    (``min``, ``max``, ``future``). Default 60,000 (a minute)."""

    @field_validator("max_deadline_ms")
    @classmethod
    def _not_below_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_deadline_ms")
        if low is not None and value < low:
            raise ValueError(f"max_deadline_ms {value} is below min_deadline_ms {low}")
        return value
