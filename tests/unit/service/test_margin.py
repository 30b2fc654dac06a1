"""The delivery margin: serve's measured output path plus the reader's fetch wait (or a
Redis round trip for a reply), bounded."""

from __future__ import annotations

import pytest

from rendezvous.service.margin import REPLY_MS, DeliveryMargin


def test_the_widest_margin_until_something_is_measured() -> None:
    margin = DeliveryMargin(2.0, 20.0, reader_ms=8.0)
    assert margin.ms == 20.0
    margin.update(None)
    assert margin.ms == 20.0
    assert margin.decide_by(1_000.0) == 980.0


def test_the_output_path_plus_the_readers_fetch_wait() -> None:
    margin = DeliveryMargin(2.0, 20.0, reader_ms=8.0)
    margin.update(3.5)
    assert margin.ms == 11.5
    margin.update(None)  # nothing measured lately: kept
    assert margin.ms == 11.5


def test_a_reply_to_a_return_address_waits_for_no_fetch() -> None:
    margin = DeliveryMargin(2.0, 20.0, reader_ms=8.0)
    assert margin.decide_by(1_000.0, replied=True) == 980.0  # nothing measured yet
    margin.update(3.5)
    assert margin.decide_by(1_000.0, replied=True) == 1_000.0 - 3.5 - REPLY_MS
    assert margin.decide_by(1_000.0) == 1_000.0 - 11.5


def test_bounded_both_ways() -> None:
    margin = DeliveryMargin(2.0, 20.0, reader_ms=8.0)
    margin.update(40.0)  # one slow moment cannot eat the request's whole budget
    assert margin.ms == 20.0
    margin = DeliveryMargin(12.0, 20.0, reader_ms=0.0)
    margin.update(0.5)
    assert margin.ms == 12.0


def test_min_above_max_is_refused() -> None:
    with pytest.raises(ValueError, match="margin_min_ms"):
        DeliveryMargin(10.0, 5.0)
