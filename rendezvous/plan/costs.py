"""The costs file: CPU-seconds per 1,000 requests and resident memory of each component, at
the request rates a benchmark measured.

Format (YAML; ``bench/bench_cost.py`` writes it)::

    measured_on: "2026-12-07, idle 2-core machine"   # free text, shown by the plan
    rates:
      - rate: 200                 # requests/s offered
        p99_ms: 21.0              # end-to-end p99 at that rate (optional)
        components:
          worker/primary: {cpu_s_per_1000: 0.9, rss_mib: 140}
          serve: {cpu_s_per_1000: 0.7, rss_mib: 90}
          ...

Component names: ``worker/<model>``, ``serve``, ``decoy``, ``monitor``, ``gateway``,
``broker``, ``redis``. Between two measured rates a value is interpolated linearly; below
the lowest it is the lowest rate's; above the highest it is the highest rate's and
marked *extrapolated*.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from rendezvous.plan.errors import PlanError

DEFAULT_COSTS = "costs.yaml"
"""The costs file shipped in this package (``rendezvous/plan/costs.yaml``)."""


@dataclass(frozen=True)
class Cost:
    """One component's cost at one rate."""

    cpu_s_per_1000: float
    rss_mib: float
    extrapolated: bool = False

    def cores(self, rate: float) -> float:
        """CPU cores this component keeps busy at ``rate`` requests/s."""
        return rate * self.cpu_s_per_1000 / 1000.0


@dataclass(frozen=True)
class Costs:
    """Every measured rate, lowest first, with each component's cost there."""

    measured_on: str
    rates: tuple[float, ...]
    table: dict[str, tuple[Cost, ...]]
    """component -> its cost at each of ``rates``."""
    source: str
    p99_ms: tuple[float | None, ...] = ()
    """End-to-end p99 latency at each of ``rates``, where measured."""

    def p99_at(self, rate: float) -> float | None:
        """The p99 measured at the highest rate not above ``rate`` (the lowest rate's below it)."""
        if not self.p99_ms:
            return None
        i = max(0, bisect.bisect_right(self.rates, rate) - 1)
        return self.p99_ms[i]

    def components(self) -> list[str]:
        return list(self.table)

    def at(self, component: str, rate: float) -> Cost:
        """``component``'s cost at ``rate``: interpolated within the measured rates,
        the nearest end's outside them (marked extrapolated above the highest)."""
        if component not in self.table:
            raise PlanError(f"{self.source} has no measurement of {component!r} (it has "
                            f"{', '.join(self.table)}); run `python bench/run.py cost` on "
                            "your own machine and pass its file with --costs")
        points, rates = self.table[component], self.rates
        if rate >= rates[-1]:
            last = points[-1]
            return Cost(last.cpu_s_per_1000, last.rss_mib, extrapolated=rate > rates[-1])
        if rate <= rates[0]:
            return points[0]
        i = bisect.bisect_right(rates, rate)
        low, high = points[i - 1], points[i]
        f = (rate - rates[i - 1]) / (rates[i] - rates[i - 1])
        return Cost(low.cpu_s_per_1000 + f * (high.cpu_s_per_1000 - low.cpu_s_per_1000),
                    low.rss_mib + f * (high.rss_mib - low.rss_mib))


def load_costs(path: Path | None = None) -> Costs:
    """The costs file at ``path``, or the one shipped with the package."""
    if path is None:
        text = resources.files("rendezvous.plan").joinpath(DEFAULT_COSTS).read_text()
        source = "the packaged costs file"
    else:
        try:
            text = path.read_text()
        except OSError as exc:
            raise PlanError(f"cannot read the costs file {path}: {exc.strerror}") from exc
        source = str(path)
    try:
        return parse_costs(yaml.safe_load(text), source)
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
        raise PlanError(f"{source} is not a costs file ({exc}); write one with "
                        "`python bench/run.py cost`") from exc


def parse_costs(doc: dict, source: str) -> Costs:
    """A :class:`Costs` from the loaded YAML document; every component at every rate."""
    entries = sorted(doc["rates"], key=lambda e: float(e["rate"]))
    if not entries:
        raise ValueError("no rates measured")
    names = list(entries[0]["components"])
    table: dict[str, tuple[Cost, ...]] = {}
    for name in names:
        table[name] = tuple(Cost(float(e["components"][name]["cpu_s_per_1000"]),
                                 float(e["components"][name]["rss_mib"])) for e in entries)
    return Costs(measured_on=str(doc.get("measured_on", "not said")),
                 rates=tuple(float(e["rate"]) for e in entries), table=table, source=source,
                 p99_ms=tuple(None if e.get("p99_ms") is None else float(e["p99_ms"])
                              for e in entries))
