"""The cost benchmark writes what ``rendezvous plan`` reads: one format, checked from both
sides without a broker."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from rendezvous.local.supervisor import Component, Supervisor
from rendezvous.plan.costs import parse_costs

BENCH = Path(__file__).resolve().parents[3] / "bench"


@pytest.fixture
def bench_cost(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/bench_cost.py, imported as the scripts import one another (by plain name)."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("bench_cost")


def test_the_costs_document_is_a_costs_file(bench_cost: ModuleType) -> None:
    measured = [{"rate": r, "p99_ms": 10.0, "sent": r * 3, "components": {
        "worker/primary": {"cpu_s_per_1000": 2.0 / r, "rss_mib": 100.0},
        "serve": {"cpu_s_per_1000": 1.0 / r, "rss_mib": 80.0}}} for r in (20, 40, 60)]
    doc = yaml.safe_load(yaml.safe_dump(bench_cost.costs_document(measured, "here")))
    costs = parse_costs(doc, "bench")
    assert costs.rates == (20.0, 40.0, 60.0)
    assert costs.at("serve", 40).cpu_s_per_1000 == 1.0 / 40
    assert costs.measured_on == "here"


def test_processes_are_named_as_the_plan_names_components(bench_cost: ModuleType,
                                                          tmp_path: Path) -> None:
    sup = Supervisor(tmp_path, {})
    for i, name in enumerate(("primary", "canary", "serve-0", "decoy", "monitor", "gateway")):
        sup.components[name] = Component(name, [], tmp_path / name, 1000 + i, {})
    pids = bench_cost.processes(sup, broker=7, redis_server=8)
    assert set(pids) == {"worker/primary", "worker/canary", "serve", "decoy", "monitor",
                         "gateway", "broker", "redis"}
