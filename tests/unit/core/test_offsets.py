"""The committable offset of one input partition."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from rendezvous.core import OffsetTracker


def test_nothing_tracked_has_nothing_to_commit() -> None:
    assert OffsetTracker().committable() is None


def test_commit_stops_at_lowest_unresolved() -> None:
    t = OffsetTracker()
    for offset, rid in [(10, "a"), (11, "b"), (12, "c")]:
        t.track(offset, rid)
    assert t.committable() == 10
    assert t.resolve("b") and t.committable() == 10  # answered out of order
    assert t.resolve("a") and t.committable() == 12
    assert t.resolve("c") and t.committable() == 13  # none open: last seen + 1


def test_resolved_at_once_never_holds_the_commit() -> None:
    t = OffsetTracker()
    t.track(0, "a")
    t.track(1, None)  # undecodable, no id: dead-lettered
    t.track(2, "b", resolved=True)  # rejected, or answered before a restart
    assert t.committable() == 0
    t.resolve("a")
    assert t.committable() == 3


def test_unknown_resolve_is_false() -> None:
    t = OffsetTracker()
    t.track(5, "a")
    assert not t.resolve("zzz") and t.committable() == 5
    assert t.resolve("a") and not t.resolve("a")


def test_same_id_twice_waits_for_its_answer_at_both_offsets() -> None:
    t = OffsetTracker()
    t.track(0, "a")
    t.track(1, "b")
    t.track(2, "a")
    t.resolve("b")
    assert t.committable() == 0
    t.resolve("a")
    assert t.committable() == 3


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.randoms(use_true_random=False))
def test_committable_matches_a_naive_scan(n: int, rnd: random.Random) -> None:
    t = OffsetTracker()
    unresolved: dict[int, str] = {}
    order = [f"r{i}" for i in range(n)]
    pending_ids: list[str] = []
    for offset, rid in enumerate(order, start=100):
        skip = rnd.random() < 0.2
        t.track(offset, rid, resolved=skip)
        if not skip:
            unresolved[offset] = rid
            pending_ids.append(rid)
        while pending_ids and rnd.random() < 0.4:
            done = pending_ids.pop(rnd.randrange(len(pending_ids)))
            t.resolve(done)
            unresolved = {o: r for o, r in unresolved.items() if r != done}
        expected = min(unresolved) if unresolved else offset + 1
        assert t.committable() == expected
