"""The model registry: shadow answers in the core, registry changes, a worker's versions."""

from __future__ import annotations

import pytest

from rendezvous.core import Rendezvous
from rendezvous.messages import (
    BacktestVerdict,
    ModelVersions,
    Policy,
    RegistryChange,
    Score,
    decode_decision,
    decode_model_versions,
    encode,
)
from rendezvous.registry import state
from rendezvous.registry.errors import PromotionRefused, RegistryError
from rendezvous.worker.follow import wanted

T0 = 1_700_000_000_000.0


def score(rid: str, model: str, version: str, value: float = 0.9, shadow: bool = False) -> Score:
    return Score(rid, model, version, "ok", value, 1, shadow=shadow)


def make() -> tuple[Rendezvous, list[float]]:
    now = [T0]
    return Rendezvous(Policy(prefer=["primary", "canary"]), lambda: now[0]), now


def test_shadow_answer_is_recorded_never_chosen_and_never_blocks_the_live_one() -> None:
    rdv, now = make()
    rdv.open("a", T0, T0 + 50)
    now[0] += 3
    assert rdv.offer(score("a", "primary", "2", 0.99, shadow=True)) == []
    assert rdv.offer(score("a", "primary", "2", 0.99, shadow=True)) == []  # a duplicate
    now[0] += 2
    [out] = rdv.offer(score("a", "primary", "1", 0.2))  # the live answer still decides
    d = out.decision
    assert (d.status, d.chosen, d.version) == ("ok", "primary", "1")
    assert out.scored.version == "1" and out.scored.score == 0.2
    assert out.scored.answered == ["primary"]
    assert [(c.model, c.version, c.shadow, c.latency_ms) for c in d.candidates] == [
        ("primary", "2", True, 3), ("primary", "1", False, 5)]
    assert decode_decision(encode(d)) == d


def test_shadow_alone_is_no_answer_and_a_late_shadow_is_not_late() -> None:
    rdv, now = make()
    rdv.open("a", T0, T0 + 50)
    rdv.offer(score("a", "primary", "2", shadow=True))
    now[0] += 50
    [out] = rdv.tick()
    assert out.decision.status == "timeout" and out.decision.chosen is None
    assert out.decision.version is None
    assert [c.shadow for c in out.decision.candidates] == [True]
    rdv.offer(score("a", "primary", "2", shadow=True))
    assert rdv.stats().late == 0


def test_shadow_answer_before_its_request_is_kept_for_it() -> None:
    rdv, _ = make()
    rdv.offer(score("a", "primary", "2", shadow=True))
    rdv.offer(score("a", "canary", "1"))
    assert rdv.open("a", T0, T0 + 50) == []  # the shadow does not count as primary's answer
    [out] = rdv.offer(score("a", "primary", "1"))
    assert out.decision.chosen == "primary"
    assert len(out.decision.candidates) == 3


def change(action: str, version: str, forced: bool = False) -> RegistryChange:
    return RegistryChange(action, version, "tester", T0, forced)


def passed(version: str, ok: bool = True) -> BacktestVerdict:
    return BacktestVerdict("primary", version, ok, "primary", [] if ok else ["agreement low"])


def test_shadow_promote_rollback() -> None:
    available = ["1", "2"]
    entry = state.initial("primary", available, target="2")
    assert entry.live == "1"
    entry = state.shadow(entry, "2", available, change("shadow", "2"))
    assert (entry.live, entry.shadow) == ("1", ["2"])
    entry = state.promote(entry, "2", available, passed("2"), change("promote", "2"))
    assert (entry.live, entry.shadow, entry.previous) == ("2", [], ["1"])
    assert entry.change is not None and entry.change.actor == "tester"
    entry = state.rollback(entry, change("rollback", "1"))
    assert (entry.live, entry.shadow, entry.previous) == ("1", [], [])
    assert decode_model_versions(encode(entry)) == entry
    with pytest.raises(RegistryError, match="no earlier live version"):
        state.rollback(entry, change("rollback", "1"))


def test_promote_needs_a_passed_backtest_unless_forced() -> None:
    entry = ModelVersions("primary", "1", ["2"])
    with pytest.raises(PromotionRefused, match="no backtest"):
        state.promote(entry, "2", ["1", "2"], None, change("promote", "2"))
    with pytest.raises(PromotionRefused, match="agreement low"):
        state.promote(entry, "2", ["1", "2"], passed("2", ok=False), change("promote", "2"))
    forced = state.promote(entry, "2", ["1", "2"], None, change("promote", "2", forced=True))
    assert forced.live == "2" and forced.change is not None and forced.change.forced


def test_refusals_name_the_problem() -> None:
    entry = ModelVersions("primary", "1")
    with pytest.raises(RegistryError, match="no version '3'"):
        state.shadow(entry, "3", ["1", "2"], change("shadow", "3"))
    with pytest.raises(RegistryError, match="live version"):
        state.shadow(entry, "1", ["1", "2"], change("shadow", "1"))
    with pytest.raises(RegistryError, match="not a shadow"):
        state.unshadow(entry, "2", change("unshadow", "2"))


def test_a_worker_scores_what_its_role_says() -> None:
    entry = ModelVersions("primary", "1", ["2", "3"])
    assert wanted(entry, "live", "3") == ["1"]
    assert wanted(entry, "shadow", "3") == ["2", "3"]
    assert wanted(None, "live", "3") == ["3"]  # nothing published: the newest
    assert wanted(None, "shadow", "3") == []
