"""Ctrl-C and SIGTERM as an exception, so every ``finally`` runs and nothing is left behind.

``rendezvous demo`` and ``up`` start processes in sessions of their own (a
terminal's Ctrl-C does not reach them); they are stopped by pid in
``finally`` blocks, which only run if the signal arrives as an exception.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # noqa: N818 (named like KeyboardInterrupt, its sibling)
    """SIGINT or SIGTERM arrived. A BaseException, so ``except Exception`` does not swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """The shell's convention: 128 + the signal number (130 for Ctrl-C)."""
        return 128 + self.signum


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Inside, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread.

    A signal can land while C code runs Python (a Kafka client's constructor reading
    its configuration), and that code may turn the :class:`Interrupted` into an error
    of its own (confluent-kafka raised ``TypeError``, seen once in CI). So an exception
    that leaves the block after a signal arrived is raised as that signal's
    :class:`Interrupted`."""
    received: list[int] = []

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in SIGNALS}
    try:
        yield
    except Interrupted:
        raise
    except Exception as exc:
        if received:
            raise Interrupted(received[0]) from exc
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def deferred(note: Callable[[str], None] | None = None, reraise: bool = True) -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the body runs; with ``reraise``, raise :class:`Interrupted`
    after it. For what must not be cut in half: starting the broker (its pid is recorded
    only once it answers) or stopping processes."""
    received: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if note is not None:
            note(f"{signal.Signals(signum).name} received: finishing this step first")

    previous = {sig: signal.signal(sig, hold) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received and reraise:
        raise Interrupted(received[0])


def run_interruptibly(main: Callable[[], object]) -> int:
    """Run a command's ``main`` inside :func:`interruptible`, for a script's ``__main__``:
    its exit status (``main``'s int, else 0), or 128 + the signal number when SIGINT or
    SIGTERM stopped it (its ``finally`` blocks have stopped what it started)."""
    try:
        with interruptible():
            status = main()
    except Interrupted as exc:
        print(f"interrupted by {exc}: what this run started is stopped", file=sys.stderr)
        return exc.exit_status
    return status if isinstance(status, int) else 0
