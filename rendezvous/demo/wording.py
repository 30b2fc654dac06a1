"""One result in words, for every place that prints one (the demo's gateway line and
summary, ``up``'s warm-up): a ``timeout`` or ``rejected`` row has no score, and says so
instead of failing to format one."""

from __future__ import annotations

import math

WITHOUT_SCORE = {
    "timeout": "no model answered in time",
    "rejected": "the pipeline rejected the input",
}
"""Statuses that never carry a score, and what they mean."""


def describe_result(status: str | None, score: object = None, model: str | None = None,
                    label: object = None, reason: str | None = None) -> str:
    """``status ok, model primary, score 0.9731`` or ``status timeout: no model answered
    in time (no score)``. ``score`` is formatted with four decimals only when it is a
    finite number (a string, e.g. a class name, is shown as it is); ``label`` is shown
    when there is one; ``reason`` replaces the standard words of a status without score."""
    if status in WITHOUT_SCORE or status is None:
        why = reason or WITHOUT_SCORE.get(status or "", "no result")
        return f"status {status or 'none'}: {why} ({describe_value('score', score)})"
    words = [f"status {status}", f"model {model or '(none)'}", describe_value("score", score)]
    if label is not None:
        words.append(describe_value("label", label))
    return ", ".join(words)


def describe_value(name: str, value: object) -> str:
    """``score 0.9731``, ``score malignant``, or ``no score`` (None, NaN, empty)."""
    if value is None or value == "" or (isinstance(value, float) and not math.isfinite(value)):
        return f"no {name}"
    if isinstance(value, float):
        return f"{name} {value:.4f}"
    return f"{name} {value}"  # an int, a string label, anything else: as it is
