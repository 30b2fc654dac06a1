"""One lane per model: its calls run on the shared thread pool, at most ``max_in_flight`` at once.

The bound is what keeps a slow model from starving the pool. A call finds the lane full
when the model is still busy with that many earlier calls (a call that gave up waiting at
its deadline leaves its model running: ONNX Runtime cannot be interrupted); the model then
counts as not answering that call: it gets an ``error`` answer at once ("busy"), so the
policy falls back without waiting for the deadline. The pool has a thread for every slot of
every lane, so a lane with a free slot never waits for a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rendezvous.embedded.errors import ClosedError
from rendezvous.messages import Score
from rendezvous.worker.answers import RowModel, answers, failures

Deliver = Callable[[list[Score]], None]


def now_ms() -> float:
    return time.time() * 1000.0


class Lane:
    """A model, and how many of its calls run now."""

    def __init__(self, model: RowModel, max_in_flight: int) -> None:
        self.model = model
        self.max_in_flight = max_in_flight
        self._lock = threading.Lock()
        self.in_flight = 0
        self.busy = 0
        """Calls that found the model busy with ``max_in_flight`` earlier calls."""
        self.failed = 0
        """Calls on which the model raised."""

    def try_enter(self) -> bool:
        """Take a slot; False (counted in ``busy``) when every slot is taken."""
        with self._lock:
            if self.in_flight >= self.max_in_flight:
                self.busy += 1
                return False
            self.in_flight += 1
            return True

    def run(self, pool: ThreadPoolExecutor, keys: Sequence[str], rows: Any, received_ms: float,
            deliver: Deliver) -> Future[None]:
        """Score ``rows`` on ``pool`` (a slot taken by :meth:`try_enter`); the answers go to
        ``deliver`` from the pool's thread. The slot is given back as soon as the model is
        done, before the answers are delivered (the caller they wake may call again at
        once), or when the run is cancelled before it started."""
        try:
            future = pool.submit(self._score, keys, rows, received_ms, deliver)
        except RuntimeError:  # the pool was shut down: the Embedded was closed meanwhile
            with self._lock:
                self.in_flight -= 1
            raise ClosedError("this Embedded was closed during the call: build a new one") from None
        future.add_done_callback(self._leave_if_cancelled)
        return future

    def refuse(self, keys: Sequence[str], received_ms: float) -> list[Score]:
        """The answers of a call that found the lane full."""
        return failures(self.model, keys, received_ms, now_ms(),
                        f"busy: its max_in_flight={self.max_in_flight} earlier calls still run")

    def _score(self, keys: Sequence[str], rows: Any, received_ms: float,
               deliver: Deliver) -> None:
        model = self.model
        try:
            prediction = model.predict(rows)
        except Exception as exc:  # noqa: BLE001 - a model's failure is an answer, not a crash
            with self._lock:
                self.failed += 1
                self.in_flight -= 1
            deliver(failures(model, keys, received_ms, now_ms(),
                             f"model failed: {str(exc)[:200] or type(exc).__name__}"))
            return
        scored = answers(model, keys, prediction, received_ms, now_ms())
        with self._lock:
            self.in_flight -= 1
        deliver(scored)

    def _leave_if_cancelled(self, future: Future[None]) -> None:
        if future.cancelled():
            with self._lock:
                self.in_flight -= 1
