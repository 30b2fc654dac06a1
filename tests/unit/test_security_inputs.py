"""Issue 31 (items 1, 2, 8 and 11), pure: what serve, the workers and the gateway accept of an
input record that anyone who may write ``input`` can write.

- a ``reply_to`` has one shape, anything else is rejected with no Redis write (item 1);
- a gateway id is 128 random bits per call, and a second record under an id already seen
  with a different payload is dead-lettered and counted, not dropped silently (item 2);
- ``deadline_ms`` is clamped to serve's bounds, by serve and the workers alike (item 8);
- the gateway's recovery after a reconnect reads with ``GET`` only (item 11).

The names this issue added are imported inside the tests, so that each test fails on its
own (not the whole module) against the code before it.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import re
import time
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY

from rendezvous.messages import DEADLETTER_REASON_HEADER, InputEvent, Scored, encode
from rendezvous.service.loop import ServeLoop
from rendezvous.service.memory import Broker, MemorySink, MemorySource
from rendezvous.settings import Settings
from tests.unit.core.test_core import VirtualClock
from tests.unit.worker.test_worker_batch import NAMES, NOW, rec

PREFIX = "unit."
HEX32 = re.compile(r"[0-9a-f]{32}")


class Serve:
    """One serve loop over an in-memory broker, partition 0 assigned."""

    def __init__(self, broker: Broker, clock: VirtualClock) -> None:
        self.loop = ServeLoop(broker.settings, MemorySource(broker), MemorySink(broker),
                              clock=clock)
        self.loop.start()
        self.loop.source.assign([0])  # type: ignore[attr-defined]

    def step(self) -> None:
        self.loop.step()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def make_broker(clock: VirtualClock, **serve: Any) -> Broker:
    return Broker(Settings(topic_prefix=PREFIX, serve=serve), clock)


@pytest.fixture
def broker(clock: VirtualClock) -> Broker:
    return make_broker(clock)


def send(broker: Broker, rid: str, **fields: Any) -> bytes:
    value = msgspec.json.encode({"id": rid, "features": [1.0, 2.0, 3.0], "deadline_ms": 100,
                                 **fields})
    broker.append("input", value, rid, 0)
    return value


def answer(broker: Broker, rid: str, model: str = "primary") -> None:
    from rendezvous.messages import Score

    broker.append("scores", encode(Score(id=rid, model=model, version="1", status="ok",
                                         score=0.9)), rid, 0)


def results(broker: Broker) -> dict[str, list[Scored]]:
    from rendezvous.messages import decode_scored

    found: dict[str, list[Scored]] = collections.defaultdict(list)
    for record in broker.records("scored"):
        result = decode_scored(record.value())
        found[result.id].append(result)
    return dict(found)


def letters(broker: Broker) -> list[tuple[bytes | None, bytes | None, str]]:
    """(key, value, reason) of every dead letter."""
    return [(r.key(), r.value(), dict(r.headers() or [])[DEADLETTER_REASON_HEADER].decode())
            for r in broker.records("deadletter")]


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def address(kind: str = "client", prefix: str = PREFIX) -> str:
    return f"{prefix}reply.{kind}.{'ab' * 16}"


# -- item 1: a return address has one shape ----------------------------------------------

REFUSED = [
    "victim:1", "victim", "", " ", "unit.reply.client", "unit.reply.client.",
    "unit.reply.client." + "ab" * 15,  # 120 bits
    "unit.reply.client." + "ab" * 17,  # 136 bits
    "unit.reply.client." + "AB" * 16,  # upper case: not what the makers write
    "unit.reply.client." + "ab" * 16 + "\n",
    "unit.reply.client." + "ab" * 16 + ":x",
    "unit.reply." + "ab" * 16,  # no kind
    "unit.reply.Client." + "ab" * 16,
    "unit.reply.cli*ent." + "ab" * 16,
    "unit.reply.a" + "b" * 32 + "." + "ab" * 16,  # a kind of 33 characters
    "other.reply.client." + "ab" * 16,  # another deployment's
    "unitXreply.client." + "ab" * 16,  # the prefix's dot is no wildcard
    "unit.gateway." + "ab" * 16,  # the gateway's channel before issue 31
    "x" * 600_000,
]


def test_a_return_address_has_one_shape_and_the_makers_make_it() -> None:
    from rendezvous.replyto import is_return_address, new_return_address, refusal

    for kind in ("gateway", "client", "a", "load-test-2"):
        made = new_return_address(PREFIX, kind)
        assert is_return_address(made, PREFIX) and refusal(made, PREFIX) is None
        assert made.startswith(f"{PREFIX}reply.{kind}.") and HEX32.fullmatch(made[-32:])
    assert is_return_address(address(), PREFIX)
    for value in REFUSED:
        assert not is_return_address(value, PREFIX), value
        why = refusal(value, PREFIX)
        assert why is not None and "reply_to" in why and len(why) < 200
    assert not is_return_address(None, PREFIX) and not is_return_address(7, PREFIX)
    made = {new_return_address(PREFIX, "client") for _ in range(1000)}
    assert len(made) == 1000
    with pytest.raises(ValueError, match="kind"):
        new_return_address(PREFIX, "Bad Kind")


def test_redis_patterns_cover_every_address_and_its_kept_keys_only() -> None:
    from fnmatch import fnmatchcase

    from rendezvous.replyto import new_return_address, redis_patterns

    keys, channels = redis_patterns(PREFIX)
    assert keys == channels == "unit.reply.*"
    made = new_return_address(PREFIX, "gateway")
    assert fnmatchcase(made, channels) and fnmatchcase(f"{made}:r1.0", keys)
    assert not fnmatchcase("victim:1", keys)
    assert redis_patterns("a*[b].")[0] == r"a\*\[b\].reply.*"  # glob characters escaped


def test_the_gateway_listens_on_an_address_of_that_shape() -> None:
    from rendezvous.gateway.service import Gateway
    from rendezvous.replyto import is_return_address

    gateway = Gateway.create(Settings(topic_prefix=PREFIX, redis={"url": "redis://127.0.0.1:1"},
                                      kafka={"bootstrap_servers": "127.0.0.1:1"}))  # unused
    assert is_return_address(gateway.reply_to, PREFIX)
    assert gateway.reply_to.startswith(f"{PREFIX}reply.gateway.")


def test_serve_rejects_a_reply_to_that_is_no_return_address_and_writes_nothing(
        broker: Broker, clock: VirtualClock) -> None:
    serve = Serve(broker, clock)
    raw = send(broker, "attack", reply_to="victim:1")
    send(broker, "caller", reply_to=address())
    answer(broker, "attack")
    answer(broker, "caller")
    serve.step()
    [rejected] = results(broker)["attack"]
    assert rejected.status == "rejected" and "'victim:1'" in (rejected.reason or "")
    assert "not a return address" in (rejected.reason or "")
    assert [r.status for r in results(broker)["caller"]] == ["ok"]
    assert [(to, r.id) for to, r in broker.replies] == [(address(), "caller")]  # no victim
    [(key, value, reason)] = letters(broker)
    assert (key, value) == (b"attack", raw) and "reply_to" in reason


def test_a_worker_does_not_score_a_request_serve_rejects_for_its_reply_to() -> None:
    from rendezvous.worker.batch import RowBuilder

    builder = RowBuilder(NAMES, 50.0, reply_prefix=PREFIX)
    batch = builder.prepare([
        rec({"id": "bad", "features": [1, 2, 3], "reply_to": "victim:1", "ts": NOW}),
        rec({"id": "good", "features": [1, 2, 3], "reply_to": address(), "ts": NOW}),
        rec({"id": "none", "features": [1, 2, 3], "ts": NOW})], NOW)
    assert batch.ids == ["good", "none"]
    [invalid] = batch.invalid
    assert invalid.id == "bad" and "reply_to" in invalid.reason


# -- item 2: ids nobody can guess, and a different payload under a known id ---------------

def test_gateway_ids_are_128_random_bits_per_call() -> None:
    from rendezvous.gateway.service import pipeline_id

    ids = [pipeline_id("same") for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    assert all(rid.startswith("same.") and HEX32.fullmatch(rid[5:]) for rid in ids)
    tokens = [rid[5:] for rid in ids]
    assert HEX32.fullmatch(pipeline_id(None))
    # Nothing shared between two consecutive calls (a process token + a counter shared 12).
    shared = [len(os.path.commonprefix(pair)) for pair in itertools.pairwise(tokens)]
    assert max(shared) < 12
    # Every bit position takes both values: no fixed part at all.
    bits = [int(t, 16) for t in tokens]
    either = 0
    for b in bits:
        either |= b
    both = ~0
    for b in bits:
        both &= b
    assert either == (1 << 128) - 1 and both == 0


def test_a_different_payload_under_an_answered_id_is_dead_lettered_and_counted(
        broker: Broker, clock: VirtualClock) -> None:
    serve = Serve(broker, clock)
    before = counter("rendezvous_serve_conflicting_ids_total")
    first = send(broker, "r1", reply_to=address())
    answer(broker, "r1")
    serve.step()
    assert [r.status for r in results(broker)["r1"]] == ["ok"]
    broker.append("input", first, "r1", 0)  # a replay of the same record: silent
    send(broker, "r1", reply_to=address(), ts=clock() + 5)  # the same request resent: silent
    serve.step()
    assert letters(broker) == [] and counter("rendezvous_serve_conflicting_ids_total") == before
    forged = send(broker, "r1", features=[9.0, 9.0, 9.0], reply_to=address())
    send(broker, "r1", reply_to=address(), deadline_ms=5000)
    send(broker, "r1", reply_to=address("gateway"))
    serve.step()
    assert [(key, reason) for key, _, reason in letters(broker)] == [
        (b"r1", "id already answered with a different payload")] * 3
    assert letters(broker)[0][1] == forged
    assert counter("rendezvous_serve_conflicting_ids_total") == before + 3
    assert [r.status for r in results(broker)["r1"]] == ["ok"]  # answered once, as before
    assert [(to, r.id) for to, r in broker.replies] == [(address(), "r1")]


def test_a_different_payload_under_an_id_in_flight_is_dead_lettered_and_counted(
        broker: Broker, clock: VirtualClock) -> None:
    serve = Serve(broker, clock)
    before = counter("rendezvous_serve_conflicting_ids_total")
    send(broker, "r2")
    serve.step()  # pending: nobody answered yet
    send(broker, "r2")  # the same again: waits with it, as before
    send(broker, "r2", features=[0.0, 0.0, 0.0])
    serve.step()
    assert [(key, reason) for key, _, reason in letters(broker)] == [
        (b"r2", "id already in flight with a different payload")]
    assert counter("rendezvous_serve_conflicting_ids_total") == before + 1
    answer(broker, "r2")
    serve.step()
    assert [r.status for r in results(broker)["r2"]] == ["ok"]
    assert broker.committed_offset("input", 0) == 3  # nothing held back


def test_a_second_invalid_record_under_a_rejected_id_is_a_conflict_unless_the_same(
        broker: Broker, clock: VirtualClock) -> None:
    serve = Serve(broker, clock)
    broker.append("input", b'{"id":"r3","features":"nope"}', "r3", 0)
    serve.step()
    broker.append("input", b'{"id":"r3","features":"nope"}', "r3", 0)  # replayed: silent
    serve.step()
    assert len(letters(broker)) == 1
    send(broker, "r3")  # a valid request under the rejected id
    serve.step()
    assert [reason for _, _, reason in letters(broker)][1:] == [
        "id already answered with a different payload"]
    assert [r.status for r in results(broker)["r3"]] == ["rejected"]


def test_payload_digests_are_bounded() -> None:
    from rendezvous.service.partition import Digests

    digests = Digests(3)
    for i in range(5):
        assert digests.first(f"r{i}", b"%d" % i) is None
    assert len(digests) == 3
    assert digests.first("r0", b"x") is None  # forgotten: remembered again
    assert digests.first("r4", b"y") == b"4"


# -- item 8: deadlines clamped to serve's bounds ------------------------------------------

def event(**fields: Any) -> InputEvent:
    return InputEvent(id="d", features=[1.0], **fields)


def test_deadline_ms_is_clamped_to_the_bounds() -> None:
    from rendezvous.messages import DeadlineBounds, deadline_at, request_deadline

    bounds = DeadlineBounds(1.0, 60_000.0)
    ts = 1_000_000.0
    assert request_deadline(event(ts=ts, deadline_ms=50), ts, 40, bounds, ts) == (ts + 50, None)
    assert request_deadline(event(ts=ts, deadline_ms=1e12), ts, 40, bounds, ts) == (
        ts + 60_000, "max")
    assert request_deadline(event(ts=ts, deadline_ms=0.001), ts, 40, bounds, ts) == (
        ts + 1, "min")
    assert request_deadline(event(ts=ts), ts, 40, bounds, ts) == (ts + 40, None)  # policy's
    # A ts (or a record timestamp: a producer may set it) far ahead: held from arrival.
    assert request_deadline(event(ts=ts * 1e6, deadline_ms=50), ts, 40, bounds, ts) == (
        ts + 60_000, "future")
    assert request_deadline(event(deadline_ms=50), ts * 1e6, 40, bounds, ts) == (
        ts + 60_000, "future")
    # The operator's own default above the maximum holds, still bounded from arrival.
    assert request_deadline(event(), ts, 90_000, bounds, ts) == (ts + 90_000, None)
    assert request_deadline(event(ts=ts * 2), ts, 90_000, bounds, ts) == (
        ts + 90_000, "future")
    # Old requests (a backlog) are not touched: their deadline has passed.
    assert request_deadline(event(ts=ts - 1e6, deadline_ms=50), ts, 40, bounds, ts) == (
        ts - 1e6 + 50, None)
    assert deadline_at(event(ts=ts, deadline_ms=1e12), ts, 40, bounds) == ts + 60_000
    assert deadline_at(event(ts=ts, deadline_ms=1e12), ts, 40) == ts + 60_000  # the defaults


def test_serve_decides_a_huge_deadline_by_the_maximum_and_counts_it(
        clock: VirtualClock) -> None:
    broker = make_broker(clock, max_deadline_ms=5_000, min_deadline_ms=2)
    serve = Serve(broker, clock)
    before = {b: counter("rendezvous_serve_deadlines_clamped_total", bound=b)
              for b in ("min", "max", "future")}
    send(broker, "huge", deadline_ms=1e12)
    send(broker, "tiny", deadline_ms=0.001)
    send(broker, "ahead", deadline_ms=100, ts=clock() + 1e9)
    send(broker, "fine", deadline_ms=4_000)
    serve.step()
    clock.advance(5_000)
    serve.step()
    found = results(broker)
    assert {rid: [r.status for r in rs] for rid, rs in found.items()} == {
        rid: ["timeout"] for rid in ("huge", "tiny", "ahead", "fine")}
    assert broker.committed_offset("input", 0) == 4  # nothing holds the position back
    after = {b: counter("rendezvous_serve_deadlines_clamped_total", bound=b)
             for b in ("min", "max", "future")}
    assert {b: after[b] - before[b] for b in after} == {"min": 1, "max": 1, "future": 1}


def test_serve_refuses_bounds_the_wrong_way_round() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_deadline_ms"):
        Settings(serve={"min_deadline_ms": 100, "max_deadline_ms": 10})


def test_a_worker_sheds_what_serve_has_given_up_on_under_the_same_bounds() -> None:
    from rendezvous.messages import DeadlineBounds
    from rendezvous.worker.batch import RowBuilder

    builder = RowBuilder(NAMES, 50.0, deadlines=DeadlineBounds(1.0, 60_000.0))
    old = NOW - 61_000  # made 61 s ago asking for ~32 years: serve gave up after 60 s
    batch = builder.prepare([
        rec({"id": "huge", "features": [1, 2, 3], "ts": old, "deadline_ms": 1e12}),
        rec({"id": "ahead", "features": [1, 2, 3], "ts": NOW + 1e9, "deadline_ms": 50}),
        rec({"id": "fine", "features": [1, 2, 3], "ts": old, "deadline_ms": 62_000})], NOW)
    assert batch.ids == ["ahead"] and batch.shed == 2


# -- item 11: the gateway's recovery with GET only ------------------------------------------

class GetOnlyRedis:
    """A Redis client whose user may GET (in a pipeline too) but not MGET, as the secure
    stack's gateway user."""

    def __init__(self, kept: dict[str, bytes]) -> None:
        self.kept = kept
        self.commands: list[str] = []

    async def mget(self, *_args: Any, **_kwargs: Any) -> list[bytes | None]:
        from redis.exceptions import NoPermissionError

        self.commands.append("mget")
        raise NoPermissionError("this user has no permissions to run the 'mget' command")

    async def get(self, key: str) -> bytes | None:
        self.commands.append("get")
        return self.kept.get(key)

    def pipeline(self, transaction: bool = True) -> GetOnlyPipeline:
        return GetOnlyPipeline(self)


class GetOnlyPipeline:
    def __init__(self, client: GetOnlyRedis) -> None:
        self.client, self.keys = client, []  # type: ignore[var-annotated]

    def get(self, key: str) -> GetOnlyPipeline:
        self.keys.append(key)
        return self

    async def execute(self, raise_on_error: bool = True) -> list[bytes | None]:
        return [await self.client.get(key) for key in self.keys]


def test_recovery_after_a_reconnect_reads_kept_results_with_get_only() -> None:
    from rendezvous.gateway.pending import Pending, ReplyListener
    from rendezvous.service.replies import result_key

    channel = address("gateway")
    kept = {result_key(channel, rid): encode(Scored(rid, "ok", score=0.5, model="primary"))
            for rid in ("g.0", "g.2")}
    client = GetOnlyRedis(kept)

    async def scenario() -> None:
        pending = Pending()
        listener = ReplyListener(client, channel, pending)  # type: ignore[arg-type]
        waiter = pending.add(["g.0", "g.1", "g.2"])
        pending.resolve(Scored("g.1", "ok", score=0.1, model="primary"))  # arrived live
        started = time.monotonic()
        await listener.recover(waiter, 1.0)
        assert time.monotonic() - started < 1.0
        assert sorted(waiter.results) == ["g.0", "g.1", "g.2"] and waiter.done.done()

    asyncio.run(scenario())
    assert "mget" not in client.commands and client.commands.count("get") == 2
