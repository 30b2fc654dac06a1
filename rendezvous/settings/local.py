"""``[local]``: the Kafka broker(s) ``rendezvous local up`` starts on this machine."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

JVM_SIZE = r"^[1-9][0-9]*[kKmMgG]?$"
"""A JVM memory size as ``-Xmx`` takes it: ``512m``, ``1g``."""


class LocalSettings(BaseModel):
    """``rendezvous local up`` (``RENDEZVOUS_LOCAL__*``); unused with your own cluster."""

    model_config = ConfigDict(frozen=True)

    brokers: int = Field(default=1, ge=1, le=9)
    """How many brokers to start (``--brokers``): 1, or a replicated KRaft cluster (3:
    replication factor 3, ``min.insync.replicas`` 2) whose brokers each get
    ``cluster_heap``. Default 1."""

    kafka_heap: str = Field(default="512m", pattern=JVM_SIZE)
    """Heap of a single local broker's JVM (``-Xmx``); at most 1 GiB on a small machine.
    Default ``512m``."""

    cluster_heap: str = Field(default="256m", pattern=JVM_SIZE)
    """Heap of each broker's JVM when ``brokers`` is more than 1. Default ``256m``."""

    kafka_gc: str = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20"
    """Garbage-collector options of the brokers' JVMs: a GC pause stops every hop of the
    pipeline at once, so pauses are kept short. Default G1 with 20 ms pauses."""

    network_threads: int = Field(default=1, ge=1)
    """The brokers' network threads (``num.network.threads``, Kafka's default 3): each
    request goes from a network thread to an I/O thread and back, and on a small machine
    fewer threads mean fewer wake-ups for the same work. Default 1."""

    io_threads: int = Field(default=2, ge=1)
    """The brokers' request handler threads (``num.io.threads``, Kafka's default 8); two,
    so a slow request does not hold up every other. Default 2."""
