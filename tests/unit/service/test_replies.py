"""Issue 16: replies wait for Redis in a bounded backlog and are delivered once it is back."""

from __future__ import annotations

import time
from typing import Any

import redis

from rendezvous.messages import Scored
from rendezvous.service.replies import REPLIES, Replies


class FakeRedis:
    """Records what a pipeline executed; raises ConnectionError while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.kept: dict[str, bytes] = {}
        self.published: list[str] = []
        self.connection_pool = type("Pool", (), {"connection_kwargs": {}})()

    def pipeline(self, transaction: bool = False) -> Any:
        fake, ops = self, []

        class Pipe:
            def set(self, key: str, body: bytes, ex: int) -> None:
                ops.append(("set", key, body))

            def publish(self, channel: str, body: bytes) -> None:
                ops.append(("publish", channel, body))

            def execute(self) -> None:
                if fake.down:
                    raise redis.ConnectionError("Connection refused")
                for op, name, body in ops:
                    if op == "set":
                        fake.kept[name] = body
                    else:
                        fake.published.append(name)

        return Pipe()


def _count(outcome: str) -> float:
    return REPLIES.labels(outcome)._value.get()


def _results(first: int, n: int) -> list[tuple[str, Scored]]:
    return [("rt", Scored(id=f"r{i}", status="ok")) for i in range(first, first + n)]


def test_replies_wait_out_an_outage_and_arrive_in_order() -> None:
    fake = FakeRedis()
    replies = Replies(fake, retry_s=0.05)  # type: ignore[arg-type]
    assert fake.connection_pool.connection_kwargs["socket_timeout"] == 2.0
    delivered, deferred = _count("delivered"), _count("deferred")
    replies.deliver(_results(0, 3))
    fake.down = True
    replies.deliver(_results(3, 4))
    replies.deliver(_results(7, 3))
    assert replies.pending() == 7 and _count("deferred") - deferred == 7
    fake.down = False
    give_up = time.monotonic() + 5
    while replies.pending() and time.monotonic() < give_up:  # the retry timer delivers them
        time.sleep(0.01)
    assert replies.pending() == 0
    assert list(fake.kept) == [f"rt:r{i}" for i in range(10)]
    assert _count("delivered") - delivered == 10
    replies.close()


def test_the_backlog_is_bounded_and_what_falls_out_is_counted() -> None:
    fake = FakeRedis()
    fake.down = True
    replies = Replies(fake, max_backlog=5, retry_s=60)  # type: ignore[arg-type]
    dropped = _count("dropped")
    replies.deliver(_results(0, 4))
    replies.deliver(_results(4, 4))
    assert replies.pending() == 5 and _count("dropped") - dropped == 3
    replies.close()
    assert replies.pending() == 0 and _count("dropped") - dropped == 8


def test_a_provisional_result_is_published_never_kept() -> None:
    fake = FakeRedis()
    replies = Replies(fake)  # type: ignore[arg-type]
    replies.deliver([("c", Scored("a", "fallback", provisional=True)), ("c", Scored("a", "ok"))])
    assert fake.published == ["c", "c"]
    assert list(fake.kept) == ["c:a"] and b'"provisional":false' in fake.kept["c:a"]
    replies.close()
