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


SHA = "ab" * 32


def change(action: str, version: str, forced: bool = False, sha256: str = SHA) -> RegistryChange:
    return RegistryChange(action, version, "tester", T0, forced, sha256=sha256)


def passed(version: str, ok: bool = True, sha256: str | None = SHA) -> BacktestVerdict:
    return BacktestVerdict("primary", version, ok, "primary", [] if ok else ["agreement low"],
                           sha256=sha256)


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


def test_promote_needs_the_backtest_of_the_bytes_it_promotes() -> None:
    """Issue 31, item 10: files swapped between backtest and promote are refused."""
    entry = ModelVersions("primary", "1", ["2"])
    swapped = change("promote", "2", sha256="cd" * 32)
    with pytest.raises(PromotionRefused, match="scored model.onnx sha256 abababababab, the "
                                               "version's manifest now says cdcdcdcdcdcd"):
        state.promote(entry, "2", ["1", "2"], passed("2"), swapped)
    with pytest.raises(PromotionRefused, match="does not say which bytes it scored"):
        state.promote(entry, "2", ["1", "2"], passed("2", sha256=None), change("promote", "2"))
    assert state.promote(entry, "2", ["1", "2"], passed("2"), change("promote", "2")).live == "2"


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


class Produced:
    """Stands in for a confluent_kafka.Producer: keeps what was produced."""

    def __init__(self) -> None:
        self.values: list[bytes] = []

    def produce(self, _topic: str, value: bytes, _key: object, **_options: object) -> None:
        self.values.append(value)


def test_scorer_scores_every_version_it_is_given_and_swaps_between_batches() -> None:
    import time
    from pathlib import Path

    import msgspec

    from rendezvous.messages import decode_score
    from rendezvous.model import load_model, resolve_model, sample_events
    from rendezvous.worker.runner import Scorer
    from tests.unit.worker.test_worker_batch import rec

    models = Path(__file__).resolve().parents[3] / "models"
    primary, canary = (load_model(resolve_model(models, n)) for n in ("primary", "canary"))
    producer = Produced()
    scorer = Scorer(None, producer, "scores", 50.0, name="primary", shadow=True)  # type: ignore[arg-type]
    now = time.time() * 1000
    batch = [rec({**e, "ts": now, "deadline_ms": 60_000}) for e in sample_events(3, seed=1)]
    assert scorer(batch, lambda *_: None) == 0  # no shadow version: read and skipped
    scorer.use([primary, canary])
    assert scorer(batch, lambda *_: None) == 6
    scores = [decode_score(v) for v in producer.values]
    assert {(s.model, s.shadow) for s in scores} == {("primary", True), ("canary", True)}
    scorer.use([canary])
    producer.values.clear()
    assert scorer(batch, lambda *_: None) == 3
    assert {decode_score(v).model for v in producer.values} == {"canary"}
    assert msgspec.json.decode(producer.values[0])["shadow"] is True


class FakeWatcher:
    """Stands in for RegistryWatcher: entries set by the test."""

    def __init__(self) -> None:
        self.entries: dict[str, ModelVersions] = {}

    def read_current(self, _timeout_s: float = 0.0) -> dict[str, ModelVersions]:
        return self.entries

    def poll(self, _timeout_s: float = 0.0) -> set[str]:
        return set()

    def digest(self, name: str, version: str) -> str | None:
        entry = self.entries.get(name)
        return entry.sha256.get(version) if entry is not None else None


def test_follower_loads_in_the_background_and_keeps_the_old_version_on_failure() -> None:
    from rendezvous.worker.errors import WorkerError
    from rendezvous.worker.follow import Follower

    loaded: list[str] = []

    class Fake:
        def __init__(self, version: str) -> None:
            self.version = version

    def load(version: str) -> Fake:
        if version == "bad":
            raise WorkerError("sha256 mismatch")
        loaded.append(version)
        return Fake(version)

    watcher = FakeWatcher()
    follower = Follower(watcher, "primary", "live", load, newest="3")  # type: ignore[arg-type]
    assert [m.version for m in follower.initial()] == ["3"]  # nothing published: newest

    def settle() -> None:
        follower._next_check = 0.0
        follower.check()
        if follower._thread is not None:
            follower._thread.join(5)

    watcher.entries["primary"] = ModelVersions("primary", "1")
    settle()
    swapped = follower.take()
    assert swapped is not None and [m.version for m in swapped] == ["1"]
    assert follower.take() is None  # handed over once
    watcher.entries["primary"] = ModelVersions("primary", "bad")
    settle()
    assert follower.take() is None and follower.versions == ["1"]  # the old one stays
    settle()  # and a failed target is not retried in a loop
    assert loaded == ["3", "1"]
