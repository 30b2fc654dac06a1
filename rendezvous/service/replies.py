"""Return addresses: results for synchronous callers, through Redis.

Each caller subscribes to its own channel (its ``reply_to``) and never reads
the scored topic. A result is also kept under ``<reply_to>:<id>`` with a TTL,
so a caller that missed the notification can still fetch it. A provisional
result (progressive requests) is only published, never kept.

Redis is a shortcut, Kafka is the truth: while Redis is unreachable the replies
wait in a bounded backlog (``max_backlog`` replies, none older than the key's TTL)
and are delivered once it answers again, retried every ``retry_s`` on a timer. All
of it runs off serve's hot path (the publisher hands batches to a thread of their
own). What could not be delivered in time is counted
(``rendezvous_serve_replies_total{outcome="dropped"}``); those callers find their
result on the scored topic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence

import redis
from prometheus_client import Counter, Gauge

from rendezvous.messages import Scored, encode

log = logging.getLogger(__name__)

REPLIES = Counter("rendezvous_serve_replies",
                  "Results for return addresses: delivered to Redis, deferred (Redis was "
                  "unreachable; kept for a retry) or dropped (never delivered)", ["outcome"])
BACKLOG = Gauge("rendezvous_serve_replies_backlog", "Replies waiting for Redis to answer again")
for _outcome in ("delivered", "deferred", "dropped"):
    REPLIES.labels(_outcome)

CHUNK = 2000
"""Replies per pipeline round trip when a backlog is flushed."""


def result_key(reply_to: str, request_id: str) -> str:
    """The Redis key a result for ``reply_to`` is kept under."""
    return f"{reply_to}:{request_id}"


class Replies:
    """Delivers committed results to their return addresses (best effort: Kafka is the truth)."""

    def __init__(self, client: redis.Redis, ttl_s: int = 300, max_backlog: int = 100_000,
                 retry_s: float = 1.0, socket_timeout_s: float = 2.0) -> None:
        # A Redis that accepts connections but never answers must not hold replies forever.
        client.connection_pool.connection_kwargs.setdefault("socket_timeout", socket_timeout_s)
        client.connection_pool.connection_kwargs.setdefault("socket_connect_timeout",
                                                            socket_timeout_s)
        self._client = client
        self._ttl_s = ttl_s
        self._max_backlog = max_backlog
        self._retry_s = retry_s
        # at, key (None: publish only), channel, body
        self._backlog: deque[tuple[float, str | None, str, bytes]] = deque()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._down_since: float | None = None
        self._closed = False

    def deliver(self, results: Sequence[tuple[str, Scored]]) -> None:
        """Deliver a batch of ``(reply_to, result)`` (and any backlog before it)."""
        if not results:
            return
        now = time.monotonic()
        with self._lock:
            # The kept copy is the final result's: a caller that missed a notification
            # must never fetch a provisional one as the answer.
            self._backlog.extend((now, None if scored.provisional
                                  else result_key(reply_to, scored.id), reply_to, encode(scored))
                                 for reply_to, scored in results)
            if self._down_since is not None:
                # Only the retry timer tries Redis while it is down: one attempt a second,
                # not one per batch (each would cost this process CPU serve needs).
                REPLIES.labels("deferred").inc(len(results))
                self._trim(now)
                BACKLOG.set(len(self._backlog))
                return
            self._flush(now)

    def pending(self) -> int:
        """Replies not delivered yet."""
        with self._lock:
            return len(self._backlog)

    def close(self) -> None:
        """Stop retrying; a backlog left now is counted as dropped."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._backlog:
                log.warning("%d replies never reached Redis (their results are on the "
                            "scored topic)", len(self._backlog))
                REPLIES.labels("dropped").inc(len(self._backlog))
                self._backlog.clear()
                BACKLOG.set(0)

    def _flush(self, now: float) -> None:
        """Send the backlog in order (lock held); keep what Redis refused for the timer."""
        self._trim(now)
        backlog = self._backlog
        while backlog:
            chunk = [backlog[i] for i in range(min(CHUNK, len(backlog)))]
            pipe = self._client.pipeline(transaction=False)
            for _at, key, channel, body in chunk:
                if key is not None:
                    pipe.set(key, body, ex=self._ttl_s)
                pipe.publish(channel, body)
            try:
                pipe.execute()
            except redis.RedisError as exc:
                self._failed(exc, len(chunk))
                break
            for _ in chunk:
                backlog.popleft()
            REPLIES.labels("delivered").inc(len(chunk))
            if self._down_since is not None:
                log.info("Redis answers again after %.1f s: delivering the replies kept "
                         "meanwhile", now - self._down_since)
                self._down_since = None
        BACKLOG.set(len(backlog))

    def _failed(self, exc: redis.RedisError, attempted: int) -> None:
        if self._down_since is None:
            # The result is on the scored topic either way; only the shortcut waits.
            self._down_since = time.monotonic()
            REPLIES.labels("deferred").inc(len(self._backlog))
            log.warning("could not deliver %d replies through Redis (%s): keeping up to %d "
                        "for %d s and retrying every %.1f s", attempted, exc,
                        self._max_backlog, self._ttl_s, self._retry_s)
        if self._timer is None and not self._closed:
            self._timer = threading.Timer(self._retry_s, self._retry)
            self._timer.daemon = True
            self._timer.start()

    def _retry(self) -> None:
        with self._lock:
            self._timer = None
            if not self._closed:
                self._flush(time.monotonic())

    def _trim(self, now: float) -> None:
        """Drop what no caller can use any more (older than the TTL), then the oldest
        beyond ``max_backlog``."""
        backlog, dropped = self._backlog, 0
        while backlog and (len(backlog) > self._max_backlog
                           or now - backlog[0][0] > self._ttl_s):
            backlog.popleft()
            dropped += 1
        if dropped:
            REPLIES.labels("dropped").inc(dropped)
            log.warning("dropped %d replies Redis could not take in time (their results "
                        "are on the scored topic)", dropped)
