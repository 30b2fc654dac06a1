"""Return addresses: results for synchronous callers, through Redis.

Each caller subscribes to its own channel (its ``reply_to``) and never reads
the scored topic. A result is also kept under ``<reply_to>:<id>`` with a TTL,
so a caller that missed the notification can still fetch it. A provisional
result (progressive requests) is only published, never kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis

from rendezvous.messages import Scored, encode

log = logging.getLogger(__name__)


def result_key(reply_to: str, request_id: str) -> str:
    """The Redis key a result for ``reply_to`` is kept under."""
    return f"{reply_to}:{request_id}"


class Replies:
    """Delivers committed results to their return addresses (best effort: Kafka is the truth)."""

    def __init__(self, client: redis.Redis, ttl_s: int = 300) -> None:
        self._client = client
        self._ttl_s = ttl_s

    def deliver(self, results: Sequence[tuple[str, Scored]]) -> None:
        """One pipeline round trip for a batch of ``(reply_to, result)``."""
        if not results:
            return
        pipe = self._client.pipeline(transaction=False)
        for reply_to, scored in results:
            body = encode(scored)
            # The kept copy is the final result's: a caller that missed a notification
            # must never fetch a provisional one as the answer.
            if not scored.provisional:
                pipe.set(result_key(reply_to, scored.id), body, ex=self._ttl_s)
            pipe.publish(reply_to, body)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            # The result is on the scored topic either way; only the shortcut failed.
            log.warning("could not deliver %d replies through Redis: %s", len(results), exc)
