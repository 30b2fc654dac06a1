"""One suite of decisions, run against serve's core path and against ``Embedded``.

Each case says what each model answers (a score, an exception, a score the policy's rule
refuses, nothing by the deadline) under a policy. Serve's path: the partition state serve
runs (serve's decode step, then ``PartitionState``: deadline computed, the core), the answers
offered as a worker would write them, on a virtual clock, the deadline ticked. Embedded:
model doubles that answer so, in real time. Both must give the same result and the same
decision record, and the expected status and model (so both cannot be wrong together).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from rendezvous.core import Outcome, Scales
from rendezvous.embedded import Embedded
from rendezvous.embedded.models import BUNDLED
from rendezvous.messages import MAX_SCORE_BYTES, InputEvent, Policy, Score, encode
from rendezvous.model import reference_quantiles
from rendezvous.service.decode import Answer, Decoder
from rendezvous.service.partition import PartitionState
from tests.unit.core.test_core import T0, VirtualClock
from tests.unit.embedded.doubles import Blocked, Fixed, Raising

DEADLINE_MS = 300.0
"""Long enough that a double answering at once is never late on a loaded machine."""
SCALES = Scales(reference_quantiles(BUNDLED))
ROW = [1.0, 2.0]


@dataclass(frozen=True)
class Case:
    name: str
    answers: dict[str, Any]
    """Model -> a score, ``"raises"`` or ``"late"`` (no answer by the deadline), most
    preferred first."""
    expect: tuple[str, str | None]
    """(status, model) of the result."""
    policy: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("primary answers", {"primary": 0.8, "canary": 0.3}, ("ok", "primary")),
    Case("primary late: canary, mapped", {"primary": "late", "canary": 0.7},
         ("fallback", "canary")),
    Case("primary raises: canary at once", {"primary": "raises", "canary": 0.7},
         ("fallback", "canary")),
    Case("primary refused by its rule", {"primary": 0.3, "canary": 0.7},
         ("fallback", "canary"), {"rules": {"primary": {"min_score": 0.5}}}),
    Case("canary refused by confidence, primary late", {"primary": "late", "canary": 0.55},
         ("timeout", None), {"rules": {"canary": {"min_confidence": 0.5}}}),
    Case("nobody in time", {"primary": "late", "canary": "late"}, ("timeout", None)),
    Case("both raise", {"primary": "raises", "canary": "raises"}, ("timeout", None)),
    Case("mapping off: the raw canary score", {"primary": "late", "canary": 0.7},
         ("fallback", "canary"), {"map_scores": False}),
    Case("canary preferred", {"canary": 0.2, "primary": 0.8}, ("ok", "canary"),
         {"prefer": ["canary", "primary"]}),
    Case("one model only", {"canary": 0.6}, ("ok", "canary"), {"prefer": ["canary"]}),
    Case("a model outside the preference is recorded, never chosen",
         {"primary": "late", "canary": 0.4, "extra": 0.99}, ("fallback", "canary")),
    Case("a primary's probability above 1 is refused",
         {"primary": 1.5, "canary": 0.7}, ("fallback", "canary")),
]


def policy_of(case: Case) -> Policy:
    import msgspec

    return msgspec.convert({"deadline_ms": DEADLINE_MS, **case.policy}, Policy)


def answer(model: str, what: Any) -> Score:
    """What a worker writes for ``what``."""
    if what == "raises":
        return Score("r", model, "1", "error", reason="model failed: boom")
    if not 0.0 <= what <= 1.0:  # the worker refuses a classifier's probability out of range
        return Score("r", model, "1", "error", reason=f"model returned a bad score ({what})")
    return Score("r", model, "1", "ok", what, 1 if what >= 0.5 else 0)


class Record:
    """An input record as serve polls it."""

    def __init__(self, value: bytes) -> None:
        self._value = value

    def topic(self) -> str:
        return "input"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 0

    def key(self) -> bytes:
        return b"r"

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return 1, int(T0)

    def headers(self) -> None:
        return None


def through_serve(case: Case) -> Outcome:
    """The decision serve's partition state takes, on a virtual clock."""
    clock = VirtualClock()
    state = PartitionState(0, policy_of(case), clock, scales=SCALES)
    decode = Decoder("input", schema=None, reply_prefix="rendezvous.",
                     max_score_bytes=MAX_SCORE_BYTES)
    outcomes, dead = state.on_request(decode.request(Record(encode(
        InputEvent("r", ROW, deadline_ms=DEADLINE_MS, ts=T0)))))
    assert dead is None
    # Least preferred first: serve sees every answer before the one that decides.
    for model, what in reversed(case.answers.items()):
        if what == "late":
            continue
        clock.advance(1)
        outcomes += state.on_answer(Answer(Record(b""), answer(model, what)))
    clock.now = T0 + DEADLINE_MS
    outcomes += state.core.tick()
    finals = [o for o in outcomes if o.final]
    assert len(finals) == 1, finals
    return finals[0]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def through_embedded(case: Case, release: threading.Event) -> tuple[Any, Any]:
    """The result and decision ``Embedded`` gives, with doubles answering as the case says."""
    doubles = []
    # Least preferred first: serve sees every answer before the one that decides.
    for model, what in reversed(case.answers.items()):
        if what == "late":
            doubles.append(Blocked(model, release))
        elif what == "raises":
            doubles.append(Raising(model))
        else:
            doubles.append(Fixed(model, what))
    with Embedded(BUNDLED, policy_of(case), models=doubles) as embedded:
        result, decision = embedded.explain(ROW, id="r")
        release.set()
    return result, decision


def comparable(scored: Any, decision: Any) -> tuple[Any, ...]:
    """What must agree whatever order the answers came in: everything but times and who
    else had answered."""
    return (scored.id, scored.status, scored.model, scored.version, scored.score,
            scored.raw_score, scored.label, scored.reason, decision.status, decision.chosen,
            decision.quantiles)


def candidates(decision: Any) -> set[tuple[Any, ...]]:
    return {(c.model, c.version, c.score, c.valid, c.reason, c.label)
            for c in decision.candidates}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_serve_and_embedded_decide_alike(case: Case, release: threading.Event) -> None:
    served = through_serve(case)
    result, decision = through_embedded(case, release)
    assert (result.status, result.model) == case.expect
    assert served.decision is not None
    assert comparable(result, decision) == comparable(served.scored, served.decision)
    # The preferred model's valid answer decides at once, so a concurrent one may come after
    # it; any other decision waits for every answer that comes.
    assert candidates(decision) <= candidates(served.decision)
    assert set(result.answered) <= set(served.scored.answered)
    if result.status != "ok":
        assert candidates(decision) == candidates(served.decision)
        assert sorted(result.answered) == sorted(served.scored.answered)
    assert result.latency_ms <= DEADLINE_MS + 100  # answered by its deadline (and a little)
