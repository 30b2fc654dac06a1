"""``[kafka]``: how every component's Kafka clients batch and fetch."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class KafkaSettings(BaseModel):
    """Producer and consumer knobs of every component (``RENDEZVOUS_KAFKA__*``). Each one
    is paid at every hop of a request (input -> scores -> scored); ``bench/bench_knobs.py``
    measures them."""

    model_config = ConfigDict(frozen=True)

    linger_ms: float = Field(default=2.0, ge=0)
    """How long a producer waits to batch records (librdkafka ``linger.ms``, whose own
    default is 5). Default 2."""

    fetch_wait_max_ms: int = Field(default=8, ge=0)
    """Longest a consumer's fetch waits at the broker for ``fetch_min_bytes`` (librdkafka
    ``fetch.wait.max.ms``); serve counts it in the time a result takes to reach its
    reader. Default 8."""

    fetch_min_bytes: int = Field(default=64 * 1024, ge=1)
    """The broker answers a fetch once this much is there, or after ``fetch_wait_max_ms``
    (librdkafka ``fetch.min.bytes``). 1 ends a fetch at every record: thousands of fetches
    a second per consumer, CPU a small machine does not have. Default 64 KiB."""
