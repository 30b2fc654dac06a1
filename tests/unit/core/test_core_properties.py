"""Properties of the rendezvous over random traffic, ticks and one restart.

Each example draws a policy, a set of requests (some rejected) and answers
(some invalid, some arriving before their request, some after its deadline),
irregular tick times and maybe a restart: a new Rendezvous seeded with
``mark_decided`` of everything decided so far, re-fed every earlier event.
An independent oracle tracks what each instance has been given and checks
every decision against the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from rendezvous.core import Outcome, Rendezvous
from rendezvous.messages import ModelRule, Policy, Score, ScoreStatus

MODELS = ["primary", "canary", "shadow"]
KINDS = ["ok", "ok", "ok", "nan", "range", "error", "none"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Request:
    rid: str
    ts: float
    deadline: float
    opened_at: float
    rejected: bool


@dataclass
class Oracle:
    """What one rendezvous instance has been given, judged independently."""

    policy: Policy
    opened: dict[str, Request] = field(default_factory=dict)
    answers: dict[str, dict[str, bool]] = field(default_factory=dict)  # first answer per model

    def valid(self, s: Score) -> bool:
        rule = self.policy.rules.get(s.model, ModelRule())
        v = s.score
        classifier = s.label is not None  # a regression's value: unbounded, no confidence
        low = rule.min_score if rule.min_score is not None else 0.0 if classifier else -math.inf
        high = rule.max_score if rule.max_score is not None else 1.0 if classifier else math.inf
        return (
            s.status == "ok"
            and v is not None
            and math.isfinite(v)
            and low <= v <= high
            and (not classifier or abs(v - 0.5) * 2 >= rule.min_confidence)
        )

    def give(self, s: Score) -> None:
        self.answers.setdefault(s.id, {}).setdefault(s.model, self.valid(s))

    def best(self, rid: str) -> str | None:
        got = self.answers.get(rid, {})
        return next((m for m in self.policy.prefer if got.get(m)), None)

    def settled(self, rid: str) -> bool:
        got = self.answers.get(rid, {})
        best = self.best(rid)
        before = (
            self.policy.prefer[: self.policy.prefer.index(best)] if best else self.policy.prefer
        )
        return all(m in got for m in before)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple:
    prefer = draw(st.lists(st.sampled_from(MODELS), min_size=1, max_size=3, unique=True))
    rules = {
        m: ModelRule(
            min_score=draw(st.sampled_from([0.0, 0.1])),
            max_score=draw(st.sampled_from([1.0, 0.9])),
            min_confidence=draw(st.sampled_from([0.0, 0.0, 0.4])),
        )
        for m in draw(st.lists(st.sampled_from(MODELS), unique=True, max_size=3))
    }
    policy = Policy(prefer=prefer, deadline_ms=40, rules=rules)
    events: list[tuple[float, int, str, object]] = []
    requests = []
    for i in range(draw(st.integers(1, 12))):
        ts = float(draw(st.integers(0, 100)))
        deadline = ts + draw(st.integers(1, 60))
        req = Request(f"r{i}", ts, deadline, ts + draw(st.integers(0, 15)), draw(st.booleans()))
        requests.append(req)
        events.append((req.opened_at, draw(st.integers(0, 9)), "request", req))
        for model in MODELS:
            if not draw(st.booleans()):
                continue
            kind = draw(st.sampled_from(KINDS))
            value = {"nan": math.nan, "range": 1.5, "none": None}.get(
                kind, draw(st.floats(0, 1, allow_nan=False))
            )
            status: ScoreStatus = "error" if kind == "error" else "ok"
            score = Score(id=req.rid, model=model, version="1", status=status, score=value)
            at = max(0.0, ts + draw(st.integers(-20, 120)))
            events.append((at, draw(st.integers(0, 9)), "score", score))
    interval = draw(st.integers(1, 10))
    gaps = draw(st.randoms(use_true_random=False))
    t = 0.0
    while t <= 260:  # past every deadline, answer and restart
        t += gaps.randint(1, interval)
        events.append((t, 10, "tick", None))  # after any event at the same time
    events.sort(key=lambda e: (e[0], e[1]))
    restart = draw(st.none() | st.integers(0, 250).map(float))
    return policy, requests, events, interval, restart


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_one_timely_correct_decision_per_request(scenario: tuple) -> None:
    policy, requests, events, interval, restart = scenario
    by_id = {r.rid: r for r in requests}
    clock = Clock()
    rdv = Rendezvous(policy, clock)
    oracle = Oracle(policy)
    decided: dict[str, Outcome] = {}
    done: list[tuple[float, int, str, object]] = []

    def feed(kind: str, payload: object) -> list[Outcome]:
        if kind == "tick":
            return rdv.tick()
        if kind == "score":
            assert isinstance(payload, Score)
            oracle.give(payload)
            return rdv.offer(payload)
        assert isinstance(payload, Request)
        oracle.opened[payload.rid] = payload
        if payload.rejected:
            return rdv.reject(payload.rid, "invalid input", payload.ts)
        return rdv.open(payload.rid, payload.ts, payload.deadline)

    def check(outcomes: list[Outcome], ticked: bool) -> None:
        for out in outcomes:
            rid = out.request_id
            assert rid not in decided, f"{rid} decided twice"
            decided[rid] = out
            req, s = by_id[rid], out.scored
            assert s.decided_ms == clock.now and out.decision.chosen == s.model
            if req.rejected:
                assert s.status == "rejected" and s.model is None
                continue
            assert s.decided_ms <= max(req.deadline, req.opened_at) + interval
            best = oracle.best(rid)
            assert s.model == best, (s, oracle.answers.get(rid))
            expected = (
                "timeout" if best is None else "ok" if best == policy.prefer[0] else "fallback"
            )
            assert s.status == expected
            assert sorted(s.answered) == sorted(
                m for m, ok in oracle.answers.get(rid, {}).items() if ok
            )
            if s.decided_ms < req.deadline:
                assert oracle.settled(rid), "decided early without reason"
        # Decided as soon as waiting could not help: nothing settled is left pending,
        # and after a tick nothing past its deadline.
        for rid in oracle.opened:
            if rid not in decided:
                assert not oracle.settled(rid), rid
                assert not ticked or clock.now < by_id[rid].deadline, rid

    for at, prio, kind, payload in events:
        if restart is not None and at > restart:
            clock.now = restart
            rdv = Rendezvous(policy, clock)
            rdv.mark_decided(decided)
            oracle = Oracle(policy)
            for _, _, old_kind, old_payload in done:
                if old_kind != "tick":
                    check(feed(old_kind, old_payload), False)
            restart = None
        clock.now = at
        check(feed(kind, payload), kind == "tick")
        done.append((at, prio, kind, payload))

    assert set(decided) == set(by_id), "every request decided"
    assert rdv.pending() == 0
