"""serve's whole loop with no broker: the memory source and sink, a virtual clock.

Each test drives :class:`ServeLoop` as the Kafka runner does (assign, step,
revoke, restart) over an in-memory broker and reads back what it wrote: results,
decisions, dead letters, replies and committed offsets.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from rendezvous.messages import (
    DEADLETTER_REASON_HEADER,
    MAX_SCORE_BYTES,
    POLICY_KEY,
    Decision,
    FeatureSchema,
    Policy,
    Score,
    Scored,
    decode_decision,
    decode_scored,
    encode,
)
from rendezvous.model.deployment import Deployment
from rendezvous.service import loop
from rendezvous.service.loop import ServeLoop
from rendezvous.service.memory import Broker, MemorySink, MemorySource, Record
from rendezvous.settings import Settings
from tests.unit.core.test_core import VirtualClock

MARGIN_MS = 20.0  # serve's delivery margin before anything is measured (margin_max_ms)
NAMES = ["a", "b", "c"]


class PausingSource(MemorySource):
    """A source whose next poll returns ``pause_s`` late, as after a SIGSTOP."""

    pause_s = 0.0

    def __init__(self, broker: Broker) -> None:
        super().__init__(broker)
        self.timeouts: list[float] = []

    def poll(self, max_records: int, timeout_s: float) -> Sequence[Record]:
        self.timeouts.append(timeout_s)
        time.sleep(self.pause_s)
        self.pause_s = 0.0
        return super().poll(max_records, timeout_s)


class Serve:
    """One serve instance over ``broker``: its loop, its source and its sink."""

    def __init__(self, broker: Broker, clock: VirtualClock, partitions: tuple[int, ...] = (0,),
                 features: list[str] | None = None) -> None:
        self.source = PausingSource(broker)
        self.sink = MemorySink(broker)
        deployment = (None if features is None
                      else Deployment(FeatureSchema(features), MAX_SCORE_BYTES))
        self.loop = ServeLoop(broker.settings, self.source, self.sink,
                              deployment=deployment, clock=clock)
        self.loop.start()
        self.source.assign(partitions)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.loop.step()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def broker(clock: VirtualClock) -> Broker:
    return Broker(Settings(topic_prefix="unit."), clock)


def send(broker: Broker, rid: str, partition: int = 0, **fields: Any) -> None:
    event = {"id": rid, "features": [1.0, 2.0, 3.0], "deadline_ms": 100, **fields}
    broker.append("input", msgspec.json.encode(event), rid, partition)


def answer(broker: Broker, rid: str, model: str, value: float = 0.9, partition: int = 0,
           status: str = "ok") -> None:
    score = Score(id=rid, model=model, version="1", status=status, score=value)  # type: ignore[arg-type]
    broker.append("scores", encode(score), rid, partition)


def answered_at_once(serve: Serve, broker: Broker, rid: str) -> None:
    """``rid`` sent, the primary's answer, one step: decided ``ok``."""
    send(broker, rid)
    answer(broker, rid, "primary")
    serve.step()


def results(broker: Broker) -> dict[str, list[Scored]]:
    found = collections.defaultdict(list)
    for record in broker.records("scored"):
        result = decode_scored(record.value())
        assert record.key() == result.id.encode()
        found[result.id].append(result)
    return dict(found)


def decisions(broker: Broker) -> list[Decision]:
    return [decode_decision(r.value()) for r in broker.records("decisions")]


def test_one_result_per_request_co_partitioned(broker: Broker, clock: VirtualClock) -> None:
    serve = Serve(broker, clock, partitions=(0, 1))
    send(broker, "both")
    answer(broker, "both", "canary", 0.2)
    answer(broker, "both", "primary", 0.8)
    answer(broker, "early", "primary", 0.7, partition=1)  # before its input: held
    send(broker, "early", partition=1)
    send(broker, "slow")
    answer(broker, "slow", "canary", 0.3)
    send(broker, "none", partition=1)
    serve.step()
    assert set(results(broker)) == {"both", "early"}
    clock.advance(100 - MARGIN_MS)  # decided by the deadline less the delivery margin
    serve.step()
    answer(broker, "both", "primary", 0.8)  # redelivered: never answered again
    serve.step(3)
    found = results(broker)
    assert {rid: [(r.status, r.model) for r in rs] for rid, rs in found.items()} == {
        "both": [("ok", "primary")], "early": [("ok", "primary")],
        "slow": [("fallback", "canary")], "none": [("timeout", None)]}
    assert found["both"][0].score == 0.8 and found["both"][0].answered == ["canary", "primary"]
    by_partition = {decode_scored(r.value()).id: r.partition() for r in broker.records("scored")}
    assert by_partition == {"both": 0, "early": 1, "slow": 0, "none": 1}
    assert sorted(d.id for d in decisions(broker)) == sorted(found)


def test_a_deadline_under_a_millisecond_away_is_decided_not_polled_for(
        clock: VirtualClock) -> None:
    """librdkafka truncates a poll's timeout to whole ms: asking it to wait 0.6 ms is
    asking it not to wait, and the loop spun until the deadline came."""
    broker = Broker(Settings(topic_prefix="unit.", serve={"max_wait_ms": 10}), clock)
    serve = Serve(broker, clock)
    send(broker, "r")
    serve.step()
    clock.advance(100 - MARGIN_MS - 2.6)  # due in 2.6 ms: wait 2 whole ms
    serve.step()
    assert serve.source.timeouts[-1] == pytest.approx(0.002) and results(broker) == {}
    clock.advance(2.0)  # due in 0.6 ms: not one more empty poll
    serve.step()
    assert serve.source.timeouts[-1] == 0.0
    assert [r.status for r in results(broker)["r"]] == ["timeout"]


def test_offsets_are_committed_only_behind_what_is_answered(broker: Broker,
                                                             clock: VirtualClock) -> None:
    serve = Serve(broker, clock)
    send(broker, "waits")  # offset 0: nothing answers it before its deadline
    send(broker, "r1")
    send(broker, "r2")
    answer(broker, "r1", "primary")
    answer(broker, "r2", "primary")
    serve.step()
    assert set(results(broker)) == {"r1", "r2"}
    assert broker.committed_offset("input", 0) == 0  # "waits" holds the commit back
    assert broker.committed_offset("scores", 0) == 2  # scores: committed as consumed
    clock.advance(100)
    serve.step()
    assert results(broker)["waits"][0].status == "timeout"
    assert broker.committed_offset("input", 0) == 3


def test_restart_recovers_answered_ids_from_scored(broker: Broker, clock: VirtualClock) -> None:
    crashed = Serve(broker, clock)
    send(broker, "waits", deadline_ms=10_000)
    send(broker, "r1")
    send(broker, "r2")
    answer(broker, "r1", "primary")
    answer(broker, "r2", "canary", 0.4)
    answer(broker, "r2", "primary", 0.6)
    crashed.step()
    assert broker.committed_offset("input", 0) == 0
    del crashed  # killed: nothing more is committed

    restarted = Serve(broker, clock)  # re-reads every input from offset 0
    assert restarted.loop.partitions[0].core.is_decided("r1")
    restarted.step()
    answer(broker, "waits", "primary")
    restarted.step()
    found = results(broker)
    assert {rid: len(rs) for rid, rs in found.items()} == {"r1": 1, "r2": 1, "waits": 1}
    assert found["waits"][0].status == "ok"
    assert broker.committed_offset("input", 0) == 3


def test_revoke_commits_and_the_next_owner_starts_there(broker: Broker,
                                                        clock: VirtualClock) -> None:
    first = Serve(broker, clock)
    answered_at_once(first, broker, "r1")
    send(broker, "r2")
    first.step()
    first.source.revoke([0])
    assert first.loop.partitions == {} and broker.committed_offset("input", 0) == 1
    second = Serve(broker, clock)
    answer(broker, "r2", "primary")
    second.step()
    assert {rid: len(rs) for rid, rs in results(broker).items()} == {"r1": 1, "r2": 1}


def test_lost_partitions_are_dropped_without_a_commit(broker: Broker,
                                                      clock: VirtualClock) -> None:
    serve = Serve(broker, clock, partitions=(0, 1))
    send(broker, "r1", partition=1)
    serve.step()
    serve.source.lose([1])
    assert list(serve.loop.partitions) == [0]
    answer(broker, "r1", "primary", partition=1)
    clock.advance(200)
    serve.step()
    assert results(broker) == {}


def test_a_policy_change_applies_to_requests_that_arrive_after_it(broker: Broker,
                                                                  clock: VirtualClock) -> None:
    serve = Serve(broker, clock)
    send(broker, "before")
    serve.step()
    broker.append("control", b"not a policy", POLICY_KEY)  # skipped, the policy stays
    broker.append("control", encode(Policy(prefer=[])), POLICY_KEY)  # invalid: ignored
    serve.step()
    assert serve.loop.policy.prefer == ["primary", "canary"]
    broker.append("control", encode(Policy(prefer=["canary", "primary"], deadline_ms=40)),
                  POLICY_KEY)
    serve.step()
    assert serve.loop.policy.prefer == ["canary", "primary"]
    send(broker, "after", deadline_ms=None)
    answer(broker, "after", "canary", 0.3)
    answer(broker, "before", "canary", 0.3)
    serve.step()
    assert [(r.status, r.model) for r in results(broker)["after"]] == [("ok", "canary")]
    assert "before" not in results(broker)  # judged by the policy it was opened with
    clock.advance(100)
    serve.step()
    assert [(r.status, r.model) for r in results(broker)["before"]] == [("fallback", "canary")]
    after = next(d for d in decisions(broker) if d.id == "after")
    assert after.deadline_ms == after.ts + 40 - MARGIN_MS


def test_bad_inputs_get_one_dead_letter_and_one_rejection(broker: Broker,
                                                          clock: VirtualClock) -> None:
    serve = Serve(broker, clock, features=NAMES)
    send(broker, "waits", deadline_ms=10_000)  # holds the commit at offset 0
    broker.append("input", b"\xff not json", "garbage")
    send(broker, "misfit", features=[1.0])
    broker.append("input", msgspec.json.encode({"id": "nofeatures"}), "nofeatures")
    serve.step()
    expected = {"garbage", "misfit", "nofeatures"}
    letters = broker.records("deadletter")
    assert sorted(r.key() for r in letters) == sorted(k.encode() for k in expected)
    for letter in letters:
        headers = dict(letter.headers() or [])
        assert headers[DEADLETTER_REASON_HEADER] and headers["rendezvous.source"]
    assert {rid: [r.status for r in rs] for rid, rs in results(broker).items()} == {
        rid: ["rejected"] for rid in expected}
    assert "expected 3 features" in (results(broker)["misfit"][0].reason or "")

    restarted = Serve(broker, clock, features=NAMES)  # re-reads them all from offset 0
    restarted.step()
    assert len(broker.records("deadletter")) == 3
    assert all(len(rs) == 1 for rs in results(broker).values())


def test_replies_go_to_the_return_address(broker: Broker, clock: VirtualClock) -> None:
    serve = Serve(broker, clock)
    caller = "unit.reply.client." + "7" * 32  # the shape rendezvous.replyto makes
    send(broker, "sync", reply_to=caller)
    send(broker, "async")
    answer(broker, "sync", "primary")
    answer(broker, "async", "primary")
    serve.step()
    assert [(to, r.id, r.status) for to, r in broker.replies] == [(caller, "sync", "ok")]


def test_late_answers_are_counted_on_the_next_decision(broker: Broker,
                                                       clock: VirtualClock) -> None:
    serve = Serve(broker, clock)
    answered_at_once(serve, broker, "r1")
    answer(broker, "r1", "canary", 0.4)  # after r1 was decided
    serve.step()
    assert len(decisions(broker)) == 1 and serve.loop.partitions[0].late == {"canary": 1}
    answered_at_once(serve, broker, "r2")
    assert [(d.id, d.late) for d in decisions(broker)] == [("r1", {}), ("r2", {"canary": 1})]
    assert [len(rs) for rs in results(broker).values()] == [1, 1]


def test_a_failed_write_is_decided_again_from_the_committed_offsets(
        broker: Broker, clock: VirtualClock) -> None:
    serve = Serve(broker, clock)
    send(broker, "waits", deadline_ms=10_000)
    answered_at_once(serve, broker, "r1")
    send(broker, "r2")
    answer(broker, "r2", "primary")
    serve.sink.fail_next_step()
    serve.step()  # r2's result is lost: rewound to input 0, scores 1
    assert set(results(broker)) == {"r1"}
    assert broker.committed_offset("input", 0) == 0
    serve.step(2)
    answer(broker, "waits", "primary")
    serve.step()
    assert {rid: len(rs) for rid, rs in results(broker).items()} == {
        "r1": 1, "r2": 1, "waits": 1}


def test_a_paused_instance_rebuilds_before_deciding(broker: Broker, clock: VirtualClock,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "PAUSED_S", 0.05)
    serve = Serve(broker, clock)
    send(broker, "r0", deadline_ms=10_000)
    serve.step()
    # Meanwhile another instance took the partition and answered r0.
    broker.append("scored", encode(Scored("r0", "fallback", 0.3, 0, "canary")), "r0")
    answer(broker, "r0", "primary")
    serve.source.pause_s = 0.2
    serve.step()  # finds it was paused: rebuilds from what scored holds
    serve.step(2)
    assert [r.model for r in results(broker)["r0"]] == ["canary"]


def test_a_progressive_request_gets_a_provisional_then_one_final_even_across_a_restart(
        broker: Broker, clock: VirtualClock) -> None:
    crashed = Serve(broker, clock)
    send(broker, "early", progressive=True, deadline_ms=10_000)
    send(broker, "plain", deadline_ms=10_000)
    answer(broker, "early", "canary", 0.4)
    answer(broker, "plain", "canary", 0.4)
    crashed.step()
    provisional = [r for r in broker.records("scored") if r.headers()]
    assert [decode_scored(r.value()).id for r in provisional] == ["early"]
    assert decode_scored(provisional[0].value()).provisional
    assert decisions(broker) == []  # a provisional result decides nothing
    assert broker.committed_offset("input", 0) in (None, 0)  # nor lets the commit pass it
    del crashed

    restarted = Serve(broker, clock)  # the provisional result is not an answer
    answer(broker, "early", "primary", 0.9)
    answer(broker, "plain", "primary", 0.9)
    restarted.step(2)
    finals = {rid: [r for r in found if not r.provisional]
              for rid, found in results(broker).items()}
    assert {rid: [(r.status, r.model) for r in found] for rid, found in finals.items()} == {
        "early": [("ok", "primary")], "plain": [("ok", "primary")]}
    assert sorted(d.id for d in decisions(broker)) == ["early", "plain"]
