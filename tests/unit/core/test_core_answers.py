"""Better answers in the core: fallback scores on the preferred model's scale, progressive
requests (a provisional result, then the final one), and ``prefer_in_time``."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rendezvous.core import LiveLatency, Outcome, Rendezvous, Scales
from rendezvous.messages import Policy, Score
from rendezvous.model.quantiles import Quantiles
from tests.unit.core.test_core import T0, VirtualClock, ok, only

# The canary spreads its scores, the primary says 0 or 1: canary 0.5 is the primary's 0.
SCALES = Scales({
    "canary": {"canary-v1": Quantiles([0.0, 0.5, 1.0], [0.0, 0.8, 1.0])},
    "primary": {"primary-v1": Quantiles([0.0, 0.5, 1.0], [0.0, 0.0, 1.0])},
})


def make(policy: Policy | None = None, **kwargs: object) -> tuple[Rendezvous, VirtualClock]:
    clock = VirtualClock()
    return Rendezvous(policy or Policy(), clock, scales=SCALES, **kwargs), clock  # type: ignore[arg-type]


def final(outcomes: list[Outcome]) -> Outcome:
    out = only(outcomes)
    assert out.final and out.decision is not None
    return out


# -- scales ---------------------------------------------------------------------


def test_a_fallback_score_is_mapped_and_the_raw_one_kept() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50)
    rdv.offer(ok("a", "canary", 0.9))
    clock.advance(50)
    out = final(rdv.tick())
    assert out.scored.status == "fallback" and out.scored.raw_score == 0.9
    # 0.9 is the canary's quantile 0.75, where the primary says 0.5
    assert math.isclose(out.scored.score or 0, 0.5)
    assert out.decision is not None
    assert out.decision.quantiles == "reference:canary/canary-v1->primary/primary-v1"
    assert [c.score for c in out.decision.candidates] == [0.9]  # candidates stay raw


def test_the_preferred_models_score_is_its_own() -> None:
    rdv, _ = make()
    rdv.open("a", T0, T0 + 50)
    rdv.offer(ok("a", "canary", 0.9))
    out = final(rdv.offer(ok("a", "primary", 0.7)))
    assert (out.scored.status, out.scored.score, out.scored.raw_score) == ("ok", 0.7, 0.7)
    assert out.decision is not None and out.decision.quantiles is None


def test_mapping_off_or_unknown_version_leaves_the_raw_score() -> None:
    for policy, version in ((Policy(map_scores=False), "canary-v1"), (Policy(), "canary-v9")):
        rdv, clock = make(policy)
        rdv.open("a", T0, T0 + 50)
        rdv.offer(Score("a", "canary", version, "ok", 0.9, 1))
        clock.advance(50)
        out = final(rdv.tick())
        assert (out.scored.score, out.scored.raw_score) == (0.9, 0.9)
        assert out.decision is not None and out.decision.quantiles is None


def test_a_policy_change_maps_onto_the_new_preferred_models_scale() -> None:
    rdv, _ = make()
    rdv.set_policy(Policy(prefer=["canary", "primary"]))
    rdv.open("a", T0, T0 + 50)
    rdv.offer(ok("a", "primary", 1.0))
    out = final(rdv.offer(Score("a", "canary", "canary-v1", "error", reason="boom")))
    assert out.scored.status == "fallback" and out.scored.raw_score == 1.0
    assert out.decision is not None
    assert out.decision.quantiles == "reference:primary/primary-v1->canary/canary-v1"


# -- progressive -------------------------------------------------------------------


def test_progressive_gets_a_provisional_then_exactly_one_final() -> None:
    rdv, clock = make()
    assert rdv.open("a", T0, T0 + 50, progressive=True) == []
    clock.advance(3)
    early = only(rdv.offer(ok("a", "canary", 0.9)))
    assert not early.final and early.decision is None
    s = early.scored
    assert s.provisional and s.status == "fallback" and s.model == "canary"
    assert math.isclose(s.score or 0, 0.5) and s.raw_score == 0.9 and s.latency_ms == 3
    clock.advance(20)
    out = final(rdv.offer(ok("a", "primary", 0.2)))
    assert not out.scored.provisional and out.scored.status == "ok" and out.scored.score == 0.2
    assert out.decision is not None
    assert (out.decision.provisional, out.decision.provisional_ms) == ("canary", T0 + 3)
    clock.advance(50)
    assert rdv.tick() == [] and rdv.stats().provisional == 1


def test_progressive_without_a_preferred_answer_ends_in_one_fallback() -> None:
    rdv, clock = make()
    rdv.open("a", T0, T0 + 50, progressive=True)
    assert not only(rdv.offer(ok("a", "canary"))).final
    clock.advance(50)
    out = final(rdv.tick())
    assert out.scored.status == "fallback" and not out.scored.provisional


def test_no_provisional_when_the_first_answer_decides_or_without_the_flag() -> None:
    rdv, _ = make()
    rdv.open("a", T0, T0 + 50, progressive=True)
    assert final(rdv.offer(ok("a", "primary"))).scored.status == "ok"
    rdv.open("b", T0, T0 + 50, progressive=True)
    rdv.offer(Score("b", "primary", "primary-v1", "error", reason="boom"))
    assert final(rdv.offer(ok("b", "canary"))).scored.status == "fallback"
    rdv.open("c", T0, T0 + 50)
    assert rdv.offer(ok("c", "canary")) == []
    assert rdv.stats().provisional == 0


def test_an_answer_that_came_before_its_progressive_request_goes_out_at_open() -> None:
    rdv, _ = make()
    rdv.offer(ok("a", "canary"))
    early = only(rdv.open("a", T0, T0 + 50, progressive=True))
    assert early.scored.provisional and early.decision is None
    assert rdv.offer(ok("a", "canary")) == []  # a second canary answer: no second provisional


# -- prefer_in_time ------------------------------------------------------------------


def slow_primary(latency: LiveLatency, ms: float, n: int = 30) -> None:
    for _ in range(n):
        latency.observe("primary", ms, T0)


def test_prefer_in_time_answers_at_once_when_the_primary_cannot_make_it() -> None:
    latency = LiveLatency()
    slow_primary(latency, 80.0)
    rdv, clock = make(Policy(prefer_in_time=True), latency=latency)
    rdv.open("a", T0, T0 + 45)
    clock.advance(4)
    out = final(rdv.offer(ok("a", "canary", 0.9)))
    assert out.scored.status == "fallback" and out.scored.decided_ms == T0 + 4
    assert "primary: not waited for" in (out.scored.reason or "")


def test_prefer_in_time_waits_when_the_primary_can_make_it_or_is_unknown() -> None:
    for p99 in (30.0, None):
        latency = LiveLatency()
        if p99 is not None:
            slow_primary(latency, p99)
        rdv, _ = make(Policy(prefer_in_time=True), latency=latency)
        rdv.open("a", T0, T0 + 45)
        assert rdv.offer(ok("a", "canary")) == []


def test_without_the_rule_a_slow_primary_is_waited_for() -> None:
    latency = LiveLatency()
    slow_primary(latency, 80.0)
    rdv, _ = make(Policy(), latency=latency)
    rdv.open("a", T0, T0 + 45)
    assert rdv.offer(ok("a", "canary")) == []


def test_latency_is_learned_from_answers_late_ones_and_deadline_misses() -> None:
    latency = LiveLatency(min_samples=3, refresh_ms=0)
    rdv, clock = make(Policy(prefer_in_time=True), latency=latency)
    for i in range(3):  # the primary misses three deadlines
        rdv.open(f"m{i}", clock.now, clock.now + 45)
        rdv.offer(ok(f"m{i}", "canary"))
        clock.advance(45)
        final(rdv.tick())
    assert latency.p99("primary", clock.now) == math.inf
    rdv.open("x", clock.now, clock.now + 45)
    assert final(rdv.offer(ok("x", "canary"))).scored.status == "fallback"  # not waited for
    clock.advance(10)
    rdv.offer(ok("x", "primary"))  # late, 10 ms after its ts: counted as well
    assert 10.0 in [ms for _, ms in latency._samples["primary"]]


def test_live_latency_forgets_old_samples_and_needs_enough() -> None:
    latency = LiveLatency(window_ms=1000, min_samples=5, refresh_ms=0)
    for i in range(100):
        latency.observe("m", float(i), T0)
    assert latency.p99("m", T0) == 99.0
    assert latency.p99("m", T0 + 2000) is None
    assert latency.p99("other", T0) is None


# -- properties -----------------------------------------------------------------------

EVENT = st.one_of(
    st.tuples(st.just("answer"), st.integers(0, 5), st.sampled_from(["primary", "canary"]),
              st.sampled_from([0.05, 0.5, 0.95, float("nan")]), st.floats(0, 30)),
    st.tuples(st.just("tick"), st.just(0), st.just(""), st.just(0.0), st.floats(0, 30)),
)


@settings(max_examples=300, deadline=None)
@given(progressive=st.lists(st.booleans(), min_size=6, max_size=6),
       events=st.lists(EVENT, max_size=40), map_scores=st.booleans(), in_time=st.booleans(),
       primary_p99=st.sampled_from([None, 5.0, 500.0]))
def test_one_final_per_request_and_a_provisional_only_when_asked(
        progressive: list[bool], events: list[tuple], map_scores: bool, in_time: bool,
        primary_p99: float | None) -> None:
    latency = LiveLatency(min_samples=1, refresh_ms=1e12)
    if primary_p99 is not None:
        latency.observe("primary", primary_p99, T0)
    rdv, clock = make(Policy(map_scores=map_scores, prefer_in_time=in_time), latency=latency)
    seen: list[Outcome] = []
    for i, flag in enumerate(progressive):
        seen += rdv.open(f"r{i}", T0, T0 + 50, progressive=flag)
    for kind, i, model, score, dt in events:
        clock.advance(dt)
        if kind == "tick":
            seen += rdv.tick()
        else:
            seen += rdv.offer(Score(f"r{i}", model, f"{model}-v1", "ok", score, 1))
    clock.advance(100)
    seen += rdv.tick()
    canary = SCALES.towards("primary")["canary"]["canary-v1"]
    for i, flag in enumerate(progressive):
        mine = [o for o in seen if o.request_id == f"r{i}"]
        finals = [o for o in mine if o.final]
        early = [o for o in mine if not o.final]
        assert len(finals) == 1 and mine[-1] is finals[0]
        assert len(early) <= (1 if flag else 0)
        for o in (*early, *finals):
            s = o.scored
            assert s.provisional == (not o.final)
            if s.model == "canary":
                want = canary(s.raw_score or 0) if map_scores else s.raw_score
                assert s.score == want
            elif s.model == "primary":
                assert s.score == s.raw_score
        if early:
            assert early[0].scored.model == "canary" and finals[0].decision is not None
            assert finals[0].decision.provisional == "canary"


def test_a_provisional_outcome_holds_the_commit_back_and_keeps_the_return_address() -> None:
    from rendezvous.service.partition import PartitionState

    state = PartitionState(0, Policy(), VirtualClock())
    state.inputs.track(7, "a")
    state.reply_to["a"] = "caller"
    state.core.open("a", T0, T0 + 50, progressive=True)
    early = state.core.offer(ok("a", "canary"))
    assert [(to, o.final) for to, o in state.settle(early)] == [("caller", False)]
    assert state.inputs.committable() == 7  # still unanswered: a crash re-reads it
    out = state.core.offer(ok("a", "primary"))
    assert [(to, o.final) for to, o in state.settle(out)] == [("caller", True)]
    assert state.inputs.committable() == 8 and "a" not in state.reply_to
