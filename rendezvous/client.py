"""A synchronous client: send one event, wait for its result through Redis.

    from rendezvous.client import Client
    with Client() as client:  # KAFKA_BOOTSTRAP_SERVERS/REDIS_URL, else `rendezvous local up`'s
        result = client.score({"mean_radius": 14.1, ...}, deadline_ms=50)
        print(result.status, result.score)

        # progressive: a provisional result as soon as any model answered, then the final
        for result in client.answers(client.send(features, progressive=True)):
            print("final" if not result.provisional else "early", result.score)

The client subscribes to its own channel (its return address) before it
sends, so it never reads the scored topic and never misses its answer.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Generator
from types import TracebackType
from typing import cast

from rendezvous.local.endpoints import with_local_endpoints
from rendezvous.messages import Features, InputEvent, Scored, decode_scored, encode
from rendezvous.replyto import new_return_address
from rendezvous.service.replies import result_key
from rendezvous.settings import Settings
from rendezvous.transport.clients import make_producer
from rendezvous.transport.connect import redis_client


class Client:
    """Sends events to the input topic and waits for their results on its own channel."""

    def __init__(self, settings: Settings | None = None) -> None:
        # Kafka and Redis left unset are the running `rendezvous local up`'s, as for the CLI.
        settings = with_local_endpoints(settings or Settings())
        self._topic = settings.topic("input")
        self._producer = make_producer(settings, **{"linger.ms": 0})
        self._redis = redis_client(settings)
        self.reply_to = new_return_address(settings.topic_prefix, "client")
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(self.reply_to)
        self._early: dict[str, Scored] = {}  # final results not asked for yet
        self._provisional: dict[str, list[Scored]] = {}  # of progressive requests sent
        self._progressive: set[str] = set()

    def send(self, features: Features, *, request_id: str | None = None,
             deadline_ms: float | None = None, progressive: bool = False) -> str:
        """Produce one event with this client's return address; returns its id.

        ``progressive=True`` asks for a provisional result before the final one
        (read both with :meth:`answers`; :meth:`wait` skips it)."""
        rid = request_id or secrets.token_hex(16)
        event = InputEvent(id=rid, features=features, deadline_ms=deadline_ms,
                           reply_to=self.reply_to, ts=time.time() * 1000.0,
                           progressive=progressive)
        if progressive:
            self._progressive.add(rid)
        self._producer.produce(self._topic, encode(event), rid.encode())
        self._producer.flush(10)
        return rid

    def wait(self, request_id: str, timeout_s: float = 5.0) -> Scored:
        """The final result of ``request_id``; TimeoutError if none came within ``timeout_s``."""
        answers = self.answers(request_id, timeout_s)
        try:
            final = next(result for result in answers if not result.provisional)
        finally:
            answers.close()
        return final

    def answers(self, request_id: str,
                timeout_s: float = 5.0) -> Generator[Scored, None, None]:
        """Every result of ``request_id`` as it arrives: the provisional ones (``provisional``
        true; only for a request sent with ``progressive=True``), then the final one, which
        ends the iteration. TimeoutError if no final result came within ``timeout_s``."""
        give_up = time.monotonic() + timeout_s
        try:
            while request_id not in self._early:
                yield from self._provisional.pop(request_id, ())
                left = give_up - time.monotonic()
                if left <= 0:
                    break
                self._receive(left)
            yield from self._provisional.pop(request_id, ())
            found = self._early.pop(request_id, None)
            if found is None:  # missed the notification (reconnect): the kept copy (a final)
                kept = self._redis.get(result_key(self.reply_to, request_id))
                if kept is None:
                    raise TimeoutError(f"no result for {request_id} within {timeout_s} s; "
                                       "is `rendezvous serve` running?")
                found = decode_scored(cast(bytes, kept))  # no decode_responses: bytes
            yield found
        finally:
            self._progressive.discard(request_id)
            self._provisional.pop(request_id, None)

    def score(self, features: Features, *, deadline_ms: float | None = None,
              timeout_s: float = 5.0) -> Scored:
        """Send one event and wait for its result."""
        return self.wait(self.send(features, deadline_ms=deadline_ms), timeout_s)

    def _receive(self, timeout_s: float) -> None:
        message = self._pubsub.get_message(timeout=timeout_s)
        if not message or message["type"] != "message":
            return
        scored = decode_scored(message["data"])
        if scored.provisional:
            if scored.id in self._progressive:  # else nobody asks for it any more
                self._provisional.setdefault(scored.id, []).append(scored)
            return
        # The first final result of an id is the answer; a second one can only come from
        # a paused serve resumed after another took over (docs/guarantees.md: exactly one
        # result per request).
        self._early.setdefault(scored.id, scored)

    def close(self) -> None:
        self._pubsub.close()
        self._producer.flush(5)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: tuple[type[BaseException], BaseException, TracebackType]) -> None:
        self.close()
