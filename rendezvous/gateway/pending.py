"""Requests waiting for their results, and the one listener that hands results to them.

The gateway process subscribes once to its own Redis channel (its return
address); ``serve`` publishes every result of a row sent with that address
there, and also keeps a copy under ``<channel>:<id>``
(:func:`~rendezvous.service.replies.result_key`), which is read only for rows
still missing after the listener had to reconnect (a notification may have been
lost meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from rendezvous.gateway.errors import BadRequest
from rendezvous.messages import Scored, Undecodable, decode_scored
from rendezvous.service.replies import result_key

log = logging.getLogger(__name__)


class Waiter:
    """The rows of one HTTP request: their ids, the results so far, and a future that is
    done when all are in (or the time is up). Created on the event loop's thread."""

    __slots__ = ("ids", "results", "done")

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.results: dict[str, Scored] = {}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def add(self, scored: Scored) -> None:
        self.results[scored.id] = scored
        if len(self.results) == len(self.ids):
            _finish(self.done)

    @property
    def missing(self) -> list[str]:
        return [rid for rid in self.ids if rid not in self.results]


class Pending:
    """Row id -> the waiter of its request; only the event loop's thread touches it."""

    def __init__(self) -> None:
        self._by_id: dict[str, Waiter] = {}
        self.unclaimed = 0
        """Results that arrived for no waiting row (after their request was answered)."""
        self.provisional = 0
        """Provisional results seen (progressive rows): the answer waits for the final one."""

    def add(self, ids: list[str]) -> Waiter:
        clash = [rid for rid in ids if rid in self._by_id]
        if clash:
            raise BadRequest(f"request id {clash[0]!r} is already in flight")
        waiter = Waiter(ids)
        for rid in ids:
            self._by_id[rid] = waiter
        return waiter

    def resolve(self, scored: Scored) -> None:
        if scored.provisional:  # a row waits for its final result
            self.provisional += 1
            return
        waiter = self._by_id.pop(scored.id, None)
        if waiter is None:
            self.unclaimed += 1
        else:
            waiter.add(scored)

    def discard(self, waiter: Waiter) -> None:
        for rid in waiter.ids:
            if self._by_id.get(rid) is waiter:
                del self._by_id[rid]

    def __len__(self) -> int:
        return len(self._by_id)


class ReplyListener:
    """Subscribes to ``channel`` and resolves :class:`Pending` rows as results arrive."""

    def __init__(self, client: aioredis.Redis, channel: str, pending: Pending) -> None:
        self._client = client
        self.channel = channel
        self._pending = pending
        self.connected = asyncio.Event()
        self.epoch = 0
        """Counts (re)subscriptions: a request that saw it change may have lost a result."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Subscribe in the background (retrying while Redis is down); see :attr:`connected`."""
        self._task = asyncio.create_task(self._listen(), name="gateway-replies")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        backoff = 0.05
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.epoch += 1
                self.connected.set()
                backoff = 0.05
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                if self.connected.is_set():
                    log.warning("reply channel lost (%s); resubscribing", exc)
                self.connected.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _deliver(self, data: bytes) -> None:
        try:
            scored = decode_scored(data)
        except Undecodable as exc:
            log.warning("ignoring an undecodable result on %s: %s", self.channel, exc)
            return
        self._pending.resolve(scored)

    async def recover(self, waiter: Waiter, timeout_s: float) -> None:
        """Fetch the kept copies of ``waiter``'s missing rows (after a reconnect): one ``GET``
        per row in one pipeline (one round trip). Not ``MGET``: a caller's Redis user may
        ``GET`` its results and nothing more (``local up --secure``)."""
        missing = waiter.missing
        if not missing:
            return
        pipe = self._client.pipeline(transaction=False)
        for rid in missing:
            pipe.get(result_key(self.channel, rid))
        try:
            kept = await asyncio.wait_for(pipe.execute(raise_on_error=False), timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("could not read kept results: %s", exc)
            return
        refused = [data for data in kept if isinstance(data, Exception)]
        if refused:
            log.warning("could not read %d kept results: %s", len(refused), refused[0])
        for data in kept:
            if isinstance(data, bytes):
                with contextlib.suppress(Undecodable):
                    waiter.add(decode_scored(data))


async def wait_for_rows(waiter: Waiter, until_monotonic: float) -> None:
    """Wait until every row of ``waiter`` has its result or the clock reaches the time.

    A timer on the loop ends the wait, not ``asyncio.wait_for``: that wraps the wait
    in a task of its own, a cost paid on every request (measured in the profile at
    1,000 requests/s)."""
    left = until_monotonic - time.monotonic()
    if left <= 0 or waiter.done.done():
        return
    timer = asyncio.get_running_loop().call_later(left, _finish, waiter.done)
    try:
        await waiter.done
    finally:
        timer.cancel()


def _finish(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
