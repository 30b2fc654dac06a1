"""Thread safety: 8 threads calling ``Embedded.score`` at once, every result checked.

An ``ok`` row's score must be what a bare ONNX Runtime session of the primary says for that
row; a ``fallback`` row's must be the canary's own score (``raw_score``) mapped onto the
primary's scale; no call may lose its result or get another call's.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import onnxruntime as ort

from rendezvous.core import Scales
from rendezvous.embedded import Embedded
from rendezvous.embedded.models import BUNDLED
from rendezvous.messages import Scored
from rendezvous.model import load_dataset, reference_quantiles

THREADS = 8
SECONDS = 3.0
DEADLINE_MS = 200.0


def bare(name: str, rows: np.ndarray) -> list[float]:
    """P(class 1) for each row, one row per run, from a plain session of the model file."""
    session = ort.InferenceSession(str(BUNDLED / name / "1" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    return [float(session.run(["probabilities"], {"input": rows[i:i + 1]})[0][0, 1])
            for i in range(len(rows))]


def test_eight_threads_get_every_result_right_and_none_lost() -> None:
    hammer(SECONDS)


def hammer(seconds: float) -> None:
    """8 threads calling ``score`` for ``seconds``; every result checked (the stress suite
    runs it for the issue's 10 s)."""
    rows = load_dataset().X[:100]
    primary, canary = bare("primary", rows), bare("canary", rows)
    to_primary = Scales(reference_quantiles(BUNDLED)).towards("primary")["canary"]["1"]
    results: list[list[tuple[int, str, Scored]]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    stop = time.monotonic() + seconds

    def call(embedded: Embedded, t: int) -> None:
        try:
            n = 0
            while time.monotonic() < stop:
                i = (t * 7 + n) % len(rows)
                rid = f"{t}-{n}"
                results[t].append((i, rid, embedded.score(rows[i], DEADLINE_MS, id=rid)))
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    with Embedded() as embedded:
        threads = [threading.Thread(target=call, args=(embedded, t)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = embedded.stats()
    assert not errors, errors
    made = sum(len(r) for r in results)
    assert made > THREADS and stats.calls == made and stats.decided == made
    statuses: Counter[str] = Counter()
    for i, rid, result in (entry for per_thread in results for entry in per_thread):
        assert result.id == rid
        statuses[result.status] += 1
        if result.status == "ok":
            assert (result.model, result.score) == ("primary", primary[i]), rid
        elif result.status == "fallback":
            assert (result.model, result.raw_score) == ("canary", canary[i]), rid
            assert result.score == to_primary(canary[i]), rid
        else:
            assert result.status == "timeout", result
    assert statuses["ok"] > 0, statuses
