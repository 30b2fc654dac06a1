"""The alerts open now, and since when: for the page and ``/windows``.

An alert is open while the newest closed window crosses its threshold; it has been
open since the oldest window of the unbroken run of kept windows that crossed it too
(so "since" is at most ``keep_windows`` old: older windows are forgotten).
"""

from __future__ import annotations

from typing import Any

from rendezvous.monitor import alerts


def open_alerts(views: list[dict[str, Any]],
                thresholds: alerts.Thresholds) -> list[dict[str, Any]]:
    """The alerts of the newest closed window in ``views`` (newest first, as
    :meth:`MonitorState.window_view` builds them), each with ``since`` (epoch ms)."""
    closed = [v for v in views if v["closed"]]
    if not closed:
        return []
    found = alerts.evaluate(closed[0], thresholds)
    since = {(a.cause, a.subject): a.window_start for a in found}
    running = set(since)
    for view in closed[1:]:
        if not running:
            break
        if view["end"] != _oldest_start(since, running):
            break  # a gap: a window with no data at all is not a crossing
        crossed = {(a.cause, a.subject) for a in alerts.evaluate(view, thresholds)}
        running &= crossed
        for key in running:
            since[key] = view["start"]
    return [{"cause": a.cause, "subject": a.subject, "model": a.model, "feature": a.feature,
             "value": a.value, "threshold": a.threshold, "samples": a.samples,
             "since": since[(a.cause, a.subject)], "window_start": a.window_start}
            for a in found]


def _oldest_start(since: dict[tuple[str, str], int], running: set[tuple[str, str]]) -> int:
    return min(since[key] for key in running)
