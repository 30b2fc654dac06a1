"""A request's deadline: from its body's ``parameters.timeout``, its ``X-Deadline-Ms``
header, or the gateway's default, within the gateway's maximum."""

from __future__ import annotations

import math

from rendezvous.gateway.errors import BadRequest


def parse_deadline_header(value: str | None) -> float | None:
    """``X-Deadline-Ms``: a positive number of milliseconds, or None if absent."""
    if value is None:
        return None
    try:
        ms = float(value)
    except ValueError:
        raise BadRequest("X-Deadline-Ms must be a number of milliseconds") from None
    if not 0 < ms < math.inf:
        raise BadRequest("X-Deadline-Ms must be positive")
    return ms


def choose_deadline(from_body: float | None, from_header: float | None,
                    default_ms: float, max_ms: float) -> float:
    """The request's deadline: the tighter of the two it named, else the default."""
    named = [d for d in (from_body, from_header) if d is not None]
    deadline = min(named) if named else default_ms
    if deadline > max_ms:
        raise BadRequest(f"deadline of {deadline:g} ms is above the gateway's {max_ms:g} ms")
    return deadline
