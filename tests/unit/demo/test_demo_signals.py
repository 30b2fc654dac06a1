"""SIGINT/SIGTERM end the demo and ``up`` as Interrupted, even when C code mangles them."""

from __future__ import annotations

import os
import signal
import time

import pytest

from rendezvous.demo.signals import Interrupted, interruptible, run_interruptibly


def test_a_signal_arrives_as_interrupted() -> None:
    with pytest.raises(Interrupted) as caught, interruptible():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs at once
    assert caught.value.exit_status == 128 + signal.SIGTERM


def test_a_signal_that_code_turned_into_another_error_still_arrives_as_interrupted() -> None:
    # As confluent-kafka's consumer constructor did when the signal landed mid-config.
    with pytest.raises(Interrupted) as caught, interruptible():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except Interrupted:
            raise TypeError("expected configuration property name as type unicode string") from None
    assert caught.value.signum == signal.SIGINT
    assert isinstance(caught.value.__cause__, TypeError)


def test_a_script_stopped_by_sigterm_runs_its_finally_and_exits_128_plus_15() -> None:
    # The benchmarks' __main__: SIGTERM used to skip the finally that stops their processes.
    stopped = []

    def main() -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            return 0
        finally:
            stopped.append(True)

    assert run_interruptibly(main) == 128 + signal.SIGTERM
    assert stopped == [True]
    assert run_interruptibly(lambda: 3) == 3
    assert run_interruptibly(lambda: print("a section")) == 0


def test_an_error_without_a_signal_is_left_alone() -> None:
    with pytest.raises(ValueError), interruptible():
        raise ValueError("a real failure")


def test_the_previous_handlers_are_back_after_the_block() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with interruptible():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
