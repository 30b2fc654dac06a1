"""The embedded thread-safety check for 10 s (the unit suite runs it for 3 s)."""

from __future__ import annotations

from tests.unit.embedded.test_embedded_threads import hammer


def test_eight_threads_for_ten_seconds() -> None:
    hammer(10.0)
