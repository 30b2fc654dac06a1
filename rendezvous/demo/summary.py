"""The demo's summary table: results, latency, deadline misses, archive, alerts, backtest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rendezvous.demo.observe import ArchiveStats
from rendezvous.demo.workload import LoadResult, latency
from rendezvous.messages import Scored


@dataclass(frozen=True)
class Summary:
    """Everything the table shows; ``None`` for a part that did not run."""

    events: int
    rate: float
    deadline_ms: float
    load: LoadResult
    archive: ArchiveStats | None = None
    alerts: Counter[str] | None = None
    alerts_complete: bool = True
    backtest: dict[str, Any] | None = None
    backtest_exit: int | None = None
    report: str | None = None
    relay: str = ""
    """The bare relay's figures from the last ``make bench`` (see :mod:`.relay_baseline`)."""
    warm_up: int = 0
    """Events sent before the measured ones, not counted (they are in the archive)."""
    gateway: tuple[str, str] | None = None
    """The curl line of one call through the HTTP gateway, and what it answered."""
    lifecycle: list[str] | None = None
    """One line per step of the model lifecycle, when it ran."""

    @property
    def deadline_misses(self) -> int:
        """Results the rendezvous decided after the deadline (their ``latency_ms``)."""
        return sum(1 for r in self.load.results.values() if r.latency_ms > self.deadline_ms)

    @property
    def client_over_deadline(self) -> int:
        """Results the client received later than the deadline after it sent the request."""
        limit = self.deadline_ms * 1000
        return sum(1 for us in self.load.latency_us.values() if us > limit)

    @property
    def in_time(self) -> float:
        """Share of the requests sent whose result the client received within the deadline."""
        limit = self.deadline_ms * 1000
        within = sum(1 for us in self.load.latency_us.values() if us <= limit)
        return within / max(self.load.sent, 1)

    @property
    def exactly_once(self) -> bool:
        return not self.load.duplicates and not self.load.missing


def _counts(counter: Counter[str]) -> str:
    return "  ".join(f"{name} {n:,}" for name, n in counter.most_common()) or "none"


def _decided(results: Iterable[Scored]) -> str:
    decided = latency(int(r.latency_ms * 1000) for r in results)
    return (f"p50 {decided.p50:.1f} ms   p99 {decided.p99:.1f} ms   p99.9 {decided.p999:.1f} ms"
            f"   max {decided.max:.1f} ms   (request ts -> rendezvous decision)")


def rows(summary: Summary) -> list[tuple[str, str]]:
    """(label, value) rows of the table."""
    load, lat = summary.load, latency(summary.load.latency_us.values())
    results = load.results.values()
    out = [
        ("in time", f"{summary.in_time * 100:.2f} % of requests received within their "
                    f"{summary.deadline_ms:g} ms deadline   ({summary.relay})"),
        ("events sent", f"{load.sent:,} in {load.send_seconds:.1f} s "
                        f"({load.sent / max(load.send_seconds, 1e-9):,.0f}/s; asked "
                        f"{summary.rate:,.0f}/s), send errors {load.send_errors}"
                        + (f"   (after {summary.warm_up:,} warm-up events, not counted)"
                           if summary.warm_up else "")),
        ("results", f"{len(load.results):,}   duplicates {load.duplicates}   "
                    f"missing {len(load.missing)}"),
        ("  by status", _counts(Counter(r.status for r in results))),
        ("  by model", _counts(Counter(r.model or "(none)" for r in results))),
        ("latency e2e", f"p50 {lat.p50:.1f} ms   p99 {lat.p99:.1f} ms   p99.9 {lat.p999:.1f} ms"
                        f"   max {lat.max:.1f} ms   (client produce -> scored consumed)"),
        ("  decided", _decided(results)),
        ("deadline misses", f"{summary.deadline_misses:,} decided after {summary.deadline_ms:g} ms"
                            f"   (client saw {summary.client_over_deadline:,} over it)"),
    ]
    if summary.gateway is not None:
        command, answer = summary.gateway
        out += [("HTTP gateway", answer), ("  try it", command)]
    if summary.archive is not None:
        a = summary.archive
        out.append(("archive", f"{a.files:,} files, {a.bytes:,} bytes   "
                               + "   ".join(f"{t} {n:,}" for t, n in a.records.items())
                               + ("   (warm-up included)" if summary.warm_up else "")
                               + f"   {a.root}"))
    if summary.alerts is not None:
        note = "" if summary.alerts_complete else "   (monitor windows still open)"
        out.append(("monitor alerts", _counts(summary.alerts) + note))
    if summary.backtest is not None:
        b = summary.backtest
        verdict = "passed" if b["passed"] else "FAILED: " + "; ".join(b["failures"])
        out.append(("backtest", f"{b['candidate']} vs {b['against']}: {b['rows']:,} rows, "
                                f"agreement {b['agreement']:.4f}, quantile distance "
                                f"{b['quantile_distance']:.4f}, input PSI "
                                f"{b['input_psi']:.4f} -> {verdict} "
                                f"(exit {summary.backtest_exit})"))
        out.append(("  report", summary.report or ""))
    for i, line in enumerate(summary.lifecycle or []):
        out.append(("lifecycle" if i == 0 else "", line))
    return out


def render(summary: Summary) -> str:
    """The table as text."""
    table = rows(summary)
    width = max(len(label) for label, _ in table)
    title = (f"rendezvous demo: {summary.events:,} events at {summary.rate:,.0f}/s, "
             f"deadline {summary.deadline_ms:g} ms")
    rule = "-" * len(title)
    body = "\n".join(f"{label:<{width}}  {value}" for label, value in table)
    return f"{title}\n{rule}\n{body}\n{rule}"
