"""Better answers through the real broker: fallback scores on the primary's scale,
progressive requests (provisional, then final), and the ``prefer_in_time`` rule."""

from __future__ import annotations

import collections
import threading
import time

import msgspec
import numpy as np
import pytest

from rendezvous.client import Client
from rendezvous.core import Scales
from rendezvous.demo.topic_records import TopicRecords
from rendezvous.demo.workload import OpenLoop
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import (
    Policy,
    Scored,
    decode_decision,
    decode_scored,
    is_provisional,
)
from rendezvous.model import load_model, reference_quantiles, resolve_model
from rendezvous.service.control import publish_policy
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise
from tests.integration.test_serve import events, start_workers
from tests.streams import produce_events, producer_for

pytestmark = pytest.mark.integration


def results_by_id(settings: Settings, finals: set[str], timeout_s: float = 60,
                  settle_s: float = 1.0) -> dict[str, list[tuple[Scored, bool]]]:
    """Every record of ``scored`` per id, in order, with whether it had the provisional
    header; read until every id in ``finals`` has a final result (then ``settle_s`` more)."""
    reader = TopicRecords(settings, "scored")

    def done(records: list) -> bool:
        return finals <= {r.key().decode() for r in records if not is_provisional(r.headers())}

    records = reader.read_until(done, timeout_s, settle_s)
    reader.close()
    found = collections.defaultdict(list)
    for record in records:
        found[record.key().decode()].append(
            (decode_scored(record.value()), is_provisional(record.headers())))
    return found


def canary_scores(settings: Settings, batch: list[dict]) -> dict[str, float]:
    model = load_model(resolve_model(settings.models_dir, "canary"))
    names = model.manifest.feature_names
    scores = model.predict(np.array([[e["features"][n] for n in names] for e in batch])).scores
    return {e["id"]: float(s) for e, s in zip(batch, scores, strict=True)}


def test_slow_primary_falls_back_with_the_canary_score_on_the_primary_scale(
        settings: Settings, supervisor: Supervisor) -> None:
    start_workers(supervisor, "--delay-ms", "5000")
    supervisor.start("serve", ["serve"])
    batch = events(20, seed=21, deadline_ms=1500)
    ids = produce_events(settings, batch)
    results = results_by_id(settings, set(ids))
    raw = canary_scores(settings, batch)
    to_primary = Scales(reference_quantiles(settings.models_dir)).towards("primary")["canary"]
    for rid in ids:
        [(result, provisional)] = results[rid]
        assert not provisional and result.status == "fallback" and result.model == "canary"
        assert result.raw_score == pytest.approx(raw[rid], abs=1e-6)
        assert result.score == pytest.approx(to_primary[result.version or ""](raw[rid]))
    reader = TopicRecords(settings, "decisions")
    decisions = reader.read_until(lambda rs: len(rs) >= len(ids), 30)
    reader.close()
    assert {decode_decision(d.value()).quantiles for d in decisions} == {
        "reference:canary/1->primary/1"}


def test_progressive_gets_provisional_then_final_and_the_others_one_result(
        settings: Settings, supervisor: Supervisor) -> None:
    start_workers(supervisor, "--delay-ms", "300")  # slow, but within the deadline
    supervisor.start("serve", ["serve"])
    progressive = events(20, seed=22, deadline_ms=5000, progressive=True)
    plain = [{**e, "id": f"plain-{e['id']}"} for e in events(20, seed=23, deadline_ms=5000)]
    ids = produce_events(settings, progressive + plain)
    results = results_by_id(settings, set(ids), settle_s=2.0)
    for event in progressive:
        got = results[event["id"]]
        assert [(r.provisional, flagged, r.model) for r, flagged in got] == [
            (True, True, "canary"), (False, False, "primary")], got
        early, final = got[0][0], got[1][0]
        assert early.status == "fallback" and final.status == "ok"
        assert early.decided_ms <= final.decided_ms
    for event in plain:
        [(result, flagged)] = results[event["id"]]
        assert not flagged and not result.provisional and result.model == "primary"
    reader = TopicRecords(settings, "decisions")
    decisions = reader.read_until(lambda rs: len(rs) >= len(ids), 30, settle_s=1.0)
    reader.close()
    by_id = {d.id: d for d in map(decode_decision, (r.value() for r in decisions))}
    assert len(decisions) == len(ids)  # one decision per request: provisional ones are none
    assert {by_id[e["id"]].provisional for e in progressive} == {"canary"}
    assert {by_id[e["id"]].provisional for e in plain} == {None}

    # The client's iterator: the provisional result, then the final one, through Redis.
    with Client(settings) as client:
        rid = client.send(progressive[0]["features"], deadline_ms=5000, progressive=True)
        got = [(r.provisional, r.model) for r in client.answers(rid, timeout_s=10)]
        assert got == [(True, "canary"), (False, "primary")]
        rid = client.send(progressive[0]["features"], deadline_ms=5000, progressive=True)
        assert client.wait(rid, timeout_s=10).model == "primary"  # wait(): the final only


def test_prefer_in_time_answers_before_the_deadline_when_the_primary_cannot_make_it(
        settings: Settings, supervisor: Supervisor) -> None:
    # A generous deadline: the canary must answer within it even on a loaded machine.
    publish_policy(settings, Policy(prefer_in_time=True))
    start_workers(supervisor, "--delay-ms", "5000")
    supervisor.start("serve", ["serve"])
    # The first requests teach serve that the primary misses its deadlines...
    # (deadline_ms in each event: workers shed by it, they do not read the policy)
    first = produce_events(settings, events(30, seed=24, deadline_ms=3000))
    results_by_id(settings, set(first), settle_s=0)
    # ... so it no longer waits for it.
    then = produce_events(settings, events(20, seed=25, deadline_ms=3000), first=30)
    results = results_by_id(settings, set(then), settle_s=0)
    for rid in then:
        [(result, _)] = results[rid]
        assert result.status == "fallback" and result.model == "canary", result
        assert "primary: not waited for" in (result.reason or ""), result
        assert result.latency_ms < 3000  # answered before its deadline, not at it


def test_kill9_with_progressive_requests_exactly_one_final(settings: Settings,
                                                          supervisor: Supervisor) -> None:
    """Provisional results are no answers: recovery after kill -9 reads finals only, so a
    request answered provisionally before the crash still gets its one final result."""
    start_workers(supervisor, "--delay-ms", "200")
    supervisor.start("serve", ["serve", "--instance-id", "a"])
    batch = events(600, seed=26, deadline_ms=1000, progressive=True)
    ids = [e["id"] for e in batch]
    producer = producer_for(settings)
    loop = OpenLoop(producer, settings.topic("input"), 200,
                    lambda i, ts: (ids[i].encode(), msgspec.json.encode({**batch[i], "ts": ts})),
                    partitions=4)
    thread = threading.Thread(target=lambda: (loop.run(len(ids)), flush_or_raise(producer)))
    thread.start()
    seen = TopicRecords(settings, "scored")
    seen.read_until(lambda rs: sum(not is_provisional(r.headers()) for r in rs) >= 50, 30)
    seen.close()
    supervisor.kill9("serve")
    time.sleep(0.5)
    supervisor.restart("serve")
    thread.join()
    results = results_by_id(settings, set(ids), timeout_s=90, settle_s=3.0)
    finals = {rid: [r for r, flagged in got if not flagged] for rid, got in results.items()}
    assert not set(ids) - set(finals), "requests without a final result"
    twice = {rid: f for rid, f in finals.items() if len(f) != 1}
    assert not twice, f"{len(twice)} requests with {set(map(len, twice.values()))} finals"
    assert all(not f[0].provisional for f in finals.values())
    provisional = sum(flagged for got in results.values() for _, flagged in got)
    assert provisional > 0
