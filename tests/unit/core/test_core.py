"""The rendezvous core, rule by rule, on a virtual clock."""

from __future__ import annotations

import math
from typing import Any

import pytest

from rendezvous.core import Outcome, PolicyError, Rendezvous
from rendezvous.messages import ModelRule, Policy, Score

T0 = 1_700_000_000_000.0


class VirtualClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms


def ok(rid: str, model: str, score: float = 0.9, label: int = 1) -> Score:
    return Score(id=rid, model=model, version=f"{model}-v1", status="ok", score=score, label=label)


def make(policy: Policy | None = None, **kwargs: Any) -> tuple[Rendezvous, VirtualClock]:
    clock = VirtualClock()
    return Rendezvous(policy or Policy(), clock, **kwargs), clock


def only(outcomes: list[Outcome]) -> Outcome:
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


def test_primary_in_time_is_ok_at_once() -> None:
    rdv, clock = make()
    assert rdv.open("a", T0, T0 + 50) == []
    clock.advance(7)
    out = only(rdv.offer(ok("a", "primary", 0.8)))
    assert out.request_id == "a"
    s = out.scored
    assert (s.status, s.model, s.version, s.score, s.label) == (
        "ok",
        "primary",
        "primary-v1",
        0.8,
        1,
    )
    assert s.latency_ms == 7 and s.decided_ms == T0 + 7 and s.answered == ["primary"]
    d = out.decision
    assert d.chosen == "primary" and d.deadline_ms == T0 + 50 and d.ts == T0
    assert [(c.model, c.valid, c.latency_ms) for c in d.candidates] == [("primary", True, 7)]
    assert rdv.pending() == 0 and rdv.next_deadline() is None


def test_canary_first_then_primary_is_ok_with_both_candidates() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50)
    clock.advance(2)
    assert rdv.offer(ok("a", "canary", 0.7)) == []
    clock.advance(10)
    out = only(rdv.offer(ok("a", "primary", 0.95)))
    assert out.scored.status == "ok" and out.scored.answered == ["canary", "primary"]
    assert [c.latency_ms for c in out.decision.candidates] == [2, 12]


def test_primary_late_falls_back_to_canary_at_deadline() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50)
    clock.advance(3)
    assert rdv.offer(ok("a", "canary", 0.6)) == []
    assert rdv.next_deadline() == T0 + 50
    clock.advance(46)
    assert rdv.tick() == []  # 1 ms before the deadline
    clock.advance(1)
    out = only(rdv.tick())
    s = out.scored
    assert (s.status, s.model, s.score) == ("fallback", "canary", 0.6)
    assert s.decided_ms == T0 + 50 and s.latency_ms == 50
    assert s.reason == "primary: no answer by deadline"
    assert out.decision.decided_ms == out.decision.deadline_ms
    clock.advance(5)
    assert rdv.offer(ok("a", "primary")) == []  # late: recorded, never re-answered
    assert rdv.stats().late == 1


def test_tick_within_decides_what_is_due_that_soon_and_nothing_later() -> None:
    rdv, clock = make()
    rdv.open("soon", T0, T0 + 50)
    rdv.open("later", T0, T0 + 52)
    clock.advance(49.4)
    assert rdv.tick() == []
    out = only(rdv.tick(within_ms=1.0))  # due in 0.6 ms: decided now, a little early
    assert out.scored.id == "soon" and out.scored.decided_ms == T0 + 49.4
    assert rdv.next_deadline() == T0 + 52 and rdv.pending() == 1


def test_no_answers_times_out_at_deadline() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 20)
    clock.advance(25)
    out = only(rdv.tick())
    s = out.scored
    assert s.status == "timeout" and s.model is None and s.score is None and s.answered == []
    assert s.reason is not None and s.reason.startswith("no valid answer by deadline")
    assert s.decided_ms == T0 + 25 and out.decision.candidates == []


def test_default_deadline_comes_from_policy() -> None:
    rdv, clock = make(Policy(deadline_ms=30))
    rdv.open("a", T0)
    assert rdv.next_deadline() == T0 + 30


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (Score(id="a", model="primary", version="1", status="ok", label=1, score=math.nan),
         "score is nan"),
        (Score(id="a", model="primary", version="1", status="ok", label=1, score=1.5), "outside"),
        (Score(id="a", model="primary", version="1", status="ok", label=1, score=-0.1), "outside"),
        (Score(id="a", model="primary", version="1", status="ok"), "no score"),
        (Score(id="a", model="primary", version="1", status="error", reason="boom"), "boom"),
        (Score(id="a", model="primary", version="1", status="error", score=0.9), "status error"),
    ],
)
def test_invalid_primary_then_canary_falls_back_at_once(bad: Score, why: str) -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50)
    clock.advance(4)
    assert rdv.offer(ok("a", "canary", 0.3, 0)) == []  # primary may still come
    clock.advance(4)
    out = only(rdv.offer(bad))  # primary answered invalidly: nothing more to wait for
    s = out.scored
    assert (s.status, s.model, s.label, s.decided_ms) == ("fallback", "canary", 0, T0 + 8)
    assert s.answered == ["canary"] and s.reason is not None and why in s.reason
    primary = out.decision.candidates[1]
    assert primary.model == "primary" and not primary.valid and why in (primary.reason or "")


def test_invalid_primary_first_then_canary_decides_on_canary() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50)
    assert rdv.offer(Score(id="a", model="primary", version="1", status="error")) == []
    clock.advance(9)
    assert only(rdv.offer(ok("a", "canary"))).scored.status == "fallback"


def test_all_invalid_times_out_at_once() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50)
    rdv.offer(Score(id="a", model="canary", version="1", status="ok", score=math.inf))
    clock.advance(3)
    out = only(rdv.offer(Score(id="a", model="primary", version="1", status="error")))
    assert out.scored.status == "timeout" and out.scored.decided_ms == T0 + 3
    assert out.scored.reason is not None and out.scored.reason.startswith("no valid answer (")


def test_reject_answers_at_once() -> None:
    rdv, clock = make()
    clock.advance(2)
    out = only(rdv.reject("bad", "non-finite feature value", T0))
    s = out.scored
    assert (s.status, s.reason, s.latency_ms, s.model) == (
        "rejected",
        "non-finite feature value",
        2,
        None,
    )
    assert rdv.reject("bad", "again", T0) == [] and rdv.open("bad", T0) == []


def test_reject_of_pending_request_decides_it_once() -> None:
    rdv, _ = make()
    rdv.open("a", T0, T0 + 50)
    assert only(rdv.reject("a", "nope", T0)).scored.status == "rejected"
    assert rdv.pending() == 0 and rdv.next_deadline() is None


def test_answers_before_open_are_applied_on_open() -> None:
    rdv, clock = make()
    assert rdv.offer(ok("a", "canary", 0.2, 0)) == []
    clock.advance(1)
    assert rdv.offer(ok("a", "primary", 0.9)) == []
    assert rdv.stats().orphans == 2 and rdv.pending() == 0
    clock.advance(1)
    out = only(rdv.open("a", T0, T0 + 50))
    assert out.scored.status == "ok" and out.scored.model == "primary"
    assert [c.latency_ms for c in out.decision.candidates] == [0, 1]
    assert rdv.stats().orphans == 0


def test_canary_before_open_waits_for_primary() -> None:
    rdv, clock = make()
    rdv.offer(ok("a", "canary"))
    assert rdv.open("a", T0, T0 + 50) == []
    clock.advance(50)
    assert only(rdv.tick()).scored.model == "canary"


def test_open_past_deadline_decides_at_once_with_what_is_there() -> None:
    rdv, clock = make()
    rdv.offer(ok("a", "canary"))
    clock.advance(80)
    out = only(rdv.open("a", T0, T0 + 50))
    assert out.scored.status == "fallback" and out.scored.decided_ms == T0 + 80


def test_offer_after_missed_tick_counts_the_answer() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50)
    rdv.offer(ok("a", "canary"))
    clock.advance(60)  # the loop was late and has not ticked yet
    out = only(rdv.offer(Score(id="a", model="shadow", version="1", status="ok", score=0.5)))
    assert out.scored.status == "fallback" and out.scored.decided_ms == T0 + 60
    assert rdv.tick() == [] and rdv.next_deadline() is None


def test_redelivered_open_of_decided_id_gives_nothing() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50)
    only(rdv.offer(ok("a", "primary")))
    assert rdv.open("a", T0, T0 + 50) == []
    assert rdv.pending() == 0 and rdv.stats().redelivered == 1
    assert rdv.open("b", T0, T0 + 50) == [] and rdv.open("b", T0, T0 + 50) == []
    assert rdv.pending() == 1


def test_mark_decided_seeds_after_restart() -> None:
    rdv, clock = make()
    rdv.mark_decided(["a", "b"])
    assert rdv.open("a", T0, T0 + 50) == [] and rdv.pending() == 0
    assert rdv.offer(ok("b", "primary")) == [] and rdv.stats().late == 1
    assert rdv.is_decided("a") and not rdv.is_decided("c")
    rdv.open("c", T0, T0 + 50)
    rdv.mark_decided(["c"])  # decided elsewhere meanwhile: dropped without a decision
    clock.advance(60)
    assert rdv.tick() == [] and rdv.pending() == 0


def test_answers_after_the_decision_are_counted_late() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50)
    rdv.offer(ok("a", "primary"))
    clock.advance(30)
    assert rdv.offer(ok("a", "canary", 0.4)) == [] and rdv.stats().late == 1


def test_duplicate_answer_from_same_model_is_ignored() -> None:
    rdv, _ = make()
    rdv.open("a", T0, T0 + 50)
    rdv.offer(Score(id="a", model="primary", version="1", status="error"))
    assert rdv.offer(ok("a", "primary")) == []  # the first answer counts
    assert rdv.stats().duplicates == 1 and rdv.pending() == 1


def test_unpreferred_model_is_recorded_never_chosen() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50)
    assert rdv.offer(ok("a", "shadow", 0.99)) == []
    clock.advance(50)
    out = only(rdv.tick())
    assert out.scored.status == "timeout" and out.scored.answered == ["shadow"]
    assert [c.model for c in out.decision.candidates] == ["shadow"]


def test_min_confidence_rule() -> None:
    policy = Policy(rules={"primary": ModelRule(min_confidence=0.5)})
    rdv, _ = make(policy)
    rdv.open("a", T0, T0 + 50)
    rdv.offer(ok("a", "canary", 0.55))
    out = only(rdv.offer(ok("a", "primary", 0.6)))  # confidence 0.2 < 0.5: no answer
    assert out.scored.status == "fallback" and out.scored.model == "canary"
    assert "confidence" in (out.scored.reason or "")
    rdv.open("b", T0, T0 + 50)
    assert only(rdv.offer(ok("b", "primary", 0.8))).scored.status == "ok"  # 0.6 >= 0.5


def test_score_range_rule() -> None:
    policy = Policy(rules={"primary": ModelRule(min_score=0.1, max_score=0.9)})
    rdv, _ = make(policy)
    rdv.open("a", T0, T0 + 50)
    rdv.offer(ok("a", "canary", 0.95))
    out = only(rdv.offer(ok("a", "primary", 0.95)))
    assert out.scored.model == "canary" and "outside [0.1, 0.9]" in (out.scored.reason or "")


def test_set_policy_applies_to_requests_opened_afterwards() -> None:
    rdv, clock = make()
    rdv.open("old", T0, T0 + 50)
    rdv.set_policy(Policy(prefer=["canary", "primary"], deadline_ms=20))
    assert rdv.policy.prefer == ["canary", "primary"]
    rdv.open("new", T0)
    assert only(rdv.offer(ok("new", "canary"))).scored.status == "ok"
    assert rdv.offer(ok("old", "canary")) == []  # still waits for primary, as opened
    clock.advance(20)
    assert rdv.tick() == []  # "new" decided already; "old" is due at 50
    clock.advance(30)
    assert only(rdv.tick()).scored.status == "fallback"


@pytest.mark.parametrize(
    "policy",
    [
        Policy(prefer=[]),
        Policy(prefer=["a", "a"]),
        Policy(deadline_ms=0),
        Policy(deadline_ms=math.nan),
        Policy(rules={"a": ModelRule(min_score=0.8, max_score=0.2)}),
        Policy(rules={"a": ModelRule(min_confidence=2)}),
    ],
)
def test_bad_policy_is_refused_and_old_kept(policy: Policy) -> None:
    rdv, _ = make()
    with pytest.raises(PolicyError):
        rdv.set_policy(policy)
    assert rdv.policy == Policy()


def test_orphans_expire_after_ttl() -> None:
    rdv, clock = make(orphan_ttl_ms=1000)
    rdv.offer(ok("a", "primary"))
    clock.advance(500)
    rdv.offer(ok("b", "primary"))
    clock.advance(500)
    rdv.tick()
    assert rdv.stats().orphans == 1 and rdv.stats().orphans_expired == 1
    assert rdv.open("a", T0 + 1000, T0 + 1050) == []  # its early answer is gone
    assert only(rdv.open("b", T0 + 1000, T0 + 1050)).scored.status == "ok"


def test_orphans_are_bounded() -> None:
    rdv, _ = make(max_orphans=3)
    for rid in "abcde":
        rdv.offer(ok(rid, "primary"))
    stats = rdv.stats()
    assert stats.orphans == 3 and stats.orphans_dropped == 2
    assert rdv.open("a", T0, T0 + 50) == []  # the oldest were dropped
    assert only(rdv.open("e", T0, T0 + 50)).scored.status == "ok"


def test_decided_memory_is_bounded() -> None:
    rdv, _ = make(remember_decided=2)
    for rid in "abc":
        rdv.open(rid, T0, T0 + 50)
        rdv.offer(ok(rid, "primary"))
    assert not rdv.is_decided("a") and rdv.is_decided("b") and rdv.is_decided("c")


def test_heap_of_early_decisions_is_compacted() -> None:
    rdv, clock = make()
    for i in range(5000):
        rdv.open(str(i), T0, T0 + 3_600_000)
        rdv.offer(ok(str(i), "primary"))
    rdv.open("last", T0, T0 + 3_600_000)
    rdv.tick()
    assert len(rdv._heap) == 1 and rdv.next_deadline() == T0 + 3_600_000


def test_next_deadline_is_the_earliest_pending() -> None:
    rdv, clock = make()
    rdv.open("late", T0, T0 + 90)
    rdv.open("soon", T0, T0 + 10)
    assert rdv.next_deadline() == T0 + 10
    rdv.offer(ok("soon", "primary"))
    assert rdv.next_deadline() == T0 + 90
    clock.advance(100)
    assert [o.request_id for o in rdv.tick()] == ["late"]
    assert rdv.next_deadline() is None
