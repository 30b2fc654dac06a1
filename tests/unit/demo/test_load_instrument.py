"""The load instrument keeps its own pauses out of what it measures."""

from __future__ import annotations

import gc
import threading

from bench.measure import run_index, tagged_requests
from rendezvous.demo.workload import instrument_gc_paused


def test_the_load_instrument_pauses_gc_while_it_measures_and_restores_it_after_the_last() -> None:
    assert gc.isenabled()
    inner_done, outer_may_end = threading.Event(), threading.Event()

    def concurrent_run() -> None:  # e.g. measure_rate beside Client.score() round trips
        with instrument_gc_paused():
            inner_done.wait(5)
        outer_may_end.set()

    with instrument_gc_paused():
        assert not gc.isenabled()
        other = threading.Thread(target=concurrent_run)
        other.start()
        with instrument_gc_paused():  # nested
            assert not gc.isenabled()
        assert not gc.isenabled()  # the nested exit left the others' pause alone
        inner_done.set()
        outer_may_end.wait(5)
        other.join(5)
        assert not gc.isenabled()  # the concurrent run ended first: still measuring here
    assert gc.isenabled()


def test_tagged_requests_carry_their_run_and_sequence_in_the_id() -> None:
    make = tagged_requests("lgab", [b'{"a":1}', b'{"a":2}'])
    assert make(3, 1000.5) == (b"lgab-3", b'{"id":"lgab-3","ts":1000.500,"features":{"a":2}}')


def test_run_index_reads_back_the_sequence_number_tagged_requests_wrote() -> None:
    rid, _ = tagged_requests("lgab", [b"{}"])(41, 0.0)
    assert run_index(rid.decode(), "lgab") == 41
