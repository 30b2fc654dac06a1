"""A synchronous client: send one event, wait for its one result through Redis.

    from rendezvous.client import Client
    with Client(Settings()) as client:
        result = client.score({"mean_radius": 14.1, ...}, deadline_ms=50)
        print(result.status, result.score)

The client subscribes to its own channel (its return address) before it
sends, so it never reads the scored topic and never misses its answer.
"""

from __future__ import annotations

import time
import uuid
from types import TracebackType

from rendezvous.messages import Features, InputEvent, Scored, decode_scored, encode
from rendezvous.service.replies import result_key
from rendezvous.settings import Settings
from rendezvous.transport.clients import make_producer


class Client:
    """Sends events to the input topic and waits for their results on its own channel."""

    def __init__(self, settings: Settings) -> None:
        self._topic = settings.topic("input")
        self._producer = make_producer(settings, **{"linger.ms": 0})
        self._redis = settings.redis_client()
        self.reply_to = f"{settings.topic_prefix}reply.{uuid.uuid4().hex}"
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(self.reply_to)
        self._early: dict[str, Scored] = {}  # answers to other requests of this client

    def send(self, features: Features, *, request_id: str | None = None,
             deadline_ms: float | None = None) -> str:
        """Produce one event with this client's return address; returns its id."""
        rid = request_id or uuid.uuid4().hex
        event = InputEvent(id=rid, features=features, deadline_ms=deadline_ms,
                           reply_to=self.reply_to, ts=time.time() * 1000.0)
        self._producer.produce(self._topic, encode(event), rid.encode())
        self._producer.flush(10)
        return rid

    def wait(self, request_id: str, timeout_s: float = 5.0) -> Scored:
        """The result of ``request_id``; TimeoutError if none came within ``timeout_s``."""
        give_up = time.monotonic() + timeout_s
        while request_id not in self._early:
            left = give_up - time.monotonic()
            if left <= 0:
                break
            message = self._pubsub.get_message(timeout=left)
            if message and message["type"] == "message":
                scored = decode_scored(message["data"])
                # The first result of an id is the answer; a second one can only come from
                # a paused serve resumed after another took over (README: exactly once).
                self._early.setdefault(scored.id, scored)
        found = self._early.pop(request_id, None)
        if found is None:  # missed the notification (reconnect): the kept copy
            kept = self._redis.get(result_key(self.reply_to, request_id))
            if kept is None:
                raise TimeoutError(f"no result for {request_id} within {timeout_s} s; "
                                   "is `rendezvous serve` running?")
            found = decode_scored(kept)
        return found

    def score(self, features: Features, *, deadline_ms: float | None = None,
              timeout_s: float = 5.0) -> Scored:
        """Send one event and wait for its result."""
        return self.wait(self.send(features, deadline_ms=deadline_ms), timeout_s)

    def close(self) -> None:
        self._pubsub.close()
        self._producer.flush(5)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        self.close()
