"""``rendezvous plan``: a small costs file, and plans checked against numbers worked out by
hand (the rules are in rendezvous/plan/capacity.py's docstring)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from rendezvous.cli import main
from rendezvous.plan.capacity import Options, make_plan
from rendezvous.plan.costs import load_costs, parse_costs
from rendezvous.plan.errors import PlanError
from rendezvous.plan.render import as_kustomize

COSTS = {
    "measured_on": "made up for this test",
    "rates": [
        {"rate": 100, "p99_ms": 20, "components": {
            "worker/primary": {"cpu_s_per_1000": 2.0, "rss_mib": 100},
            "serve": {"cpu_s_per_1000": 1.0, "rss_mib": 80},
            "decoy": {"cpu_s_per_1000": 0.4, "rss_mib": 60},
            "monitor": {"cpu_s_per_1000": 0.6, "rss_mib": 200},
            "gateway": {"cpu_s_per_1000": 3.0, "rss_mib": 90},
            "redis": {"cpu_s_per_1000": 0.2, "rss_mib": 10},
            "broker": {"cpu_s_per_1000": 1.0, "rss_mib": 1000}}},
        {"rate": 1000, "p99_ms": 30, "components": {
            "worker/primary": {"cpu_s_per_1000": 1.0, "rss_mib": 120},
            "serve": {"cpu_s_per_1000": 0.5, "rss_mib": 100},
            "decoy": {"cpu_s_per_1000": 0.2, "rss_mib": 60},
            "monitor": {"cpu_s_per_1000": 0.2, "rss_mib": 200},
            "gateway": {"cpu_s_per_1000": 2.0, "rss_mib": 90},
            "redis": {"cpu_s_per_1000": 0.1, "rss_mib": 10},
            "broker": {"cpu_s_per_1000": 0.8, "rss_mib": 1000}}},
    ],
}


def plan(rate: float, **kw: object):  # type: ignore[no-untyped-def]
    base = {"models": ("primary",), "partitions_now": 4, "vcpu_hour_price": 0.04}
    return make_plan(parse_costs(COSTS, "test"), Options(rate=rate, **{**base, **kw}))


def test_plan_above_the_measured_rates_by_hand() -> None:
    p = plan(2000)
    # (replicas, cpu millicores per pod, memory MiB per pod), worked out by hand:
    # worker: 2000 × 1.0 / 1000 = 2.0 cores; ceil(2.0 / 0.5) = 4 pods; 2.0/4/0.5 = 1000m;
    #   120 MiB × 1.25 = 150
    assert (p.get("worker/primary").replicas, p.get("worker/primary").cpu_milli,
            p.get("worker/primary").memory_mib) == (4, 1000, 150)
    # serve: 1.0 cores -> 2 pods of 1000m; 100 × 1.25 = 125
    assert (p.get("serve").replicas, p.get("serve").cpu_milli,
            p.get("serve").memory_mib) == (2, 1000, 125)
    # decoy: 0.4 cores -> ceil(0.8) = 1, raised to min_replicas 2; 0.4/2/0.5 = 400m; 75
    assert (p.get("decoy").replicas, p.get("decoy").cpu_milli,
            p.get("decoy").memory_mib) == (2, 400, 75)
    # monitor: one process, 0.4 cores / 0.5 = 800m; 250
    assert (p.get("monitor").replicas, p.get("monitor").cpu_milli) == (1, 800)
    # gateway: 4.0 cores -> 8 pods of 1000m; 112.5 -> 113
    assert (p.get("gateway").replicas, p.get("gateway").cpu_milli,
            p.get("gateway").memory_mib) == (8, 1000, 113)
    # redis: 0.2 cores -> 400m; 12.5 -> 13
    assert (p.get("redis").cpu_milli, p.get("redis").memory_mib) == (400, 13)
    # brokers: 1.6 cores × RF 3 = 4.8; ceil(4.8 / (0.5 × 2 vCPU)) = 5; 4.8/5/0.5 = 1920m
    assert (p.get("broker").replicas, p.get("broker").cpu_milli) == (5, 1920)
    assert p.partitions == 4 and p.partitions_needed == 4
    # 4×1 + 2×1 + 2×0.4 + 0.8 + 8×1 + 0.4 + 5×1.92 = 25.6 vCPU
    assert p.total_vcpu == pytest.approx(25.6)
    # 25.6 × 0.04 × 1e6 / (3600 × 2000)
    assert p.price_per_million == pytest.approx(0.142222, rel=1e-4)
    assert p.extrapolated
    assert any(n.startswith("EXTRAPOLATED") for n in p.notes)


def test_between_measured_rates_is_interpolated_not_extrapolated() -> None:
    p = plan(550)
    w = p.get("worker/primary")
    # halfway from 100 to 1000: 1.5 CPU-s/1000, 110 MiB; 0.825 cores -> 2 pods of 830m; 138
    assert (w.replicas, w.cpu_milli, w.memory_mib) == (2, 830, 138)
    assert not p.extrapolated
    assert w.headroom == pytest.approx(1 - 0.825 / 1.66)


def test_more_partitions_needed_says_recreate_the_four_together() -> None:
    p = plan(2000, partitions_now=2)
    assert p.partitions == 4
    note = next(n for n in p.notes if "partitions" in n)
    assert "input, scores, scored, decisions" in note and "recreated together" in note


def test_refuses_more_consumers_than_partitions() -> None:
    with pytest.raises(PlanError, match="4 worker/primary instances .* 3 partitions"):
        plan(2000, partitions=3)


def test_refuses_a_single_process_over_one_core() -> None:
    # monitor at 5000/s: 5000 × 0.2 / 1000 = 1.0 core, / 0.5 utilization = 2 > 1
    with pytest.raises(PlanError, match="monitor is one process"):
        plan(5000, partitions_now=10)


def test_refuses_a_deadline_under_the_measured_p99() -> None:
    with pytest.raises(PlanError, match="p99 .* 30 ms, over the 25 ms deadline"):
        plan(2000, deadline_ms=25)


def test_unmeasured_model_costed_as_the_dearest_worker() -> None:
    p = plan(550, models=("primary", "fraud"))
    assert p.get("worker/fraud").cpu_milli == p.get("worker/primary").cpu_milli
    assert any("worker/fraud was not measured" in n for n in p.notes)


def test_kustomize_overlay_carries_replicas_resources_and_bounds() -> None:
    doc = yaml.safe_load(as_kustomize(plan(2000), "test"))
    assert {"name": "rendezvous-worker-primary", "count": 4} in doc["replicas"]
    by_target = {(x["target"]["kind"], x["target"]["name"]): yaml.safe_load(x["patch"])
                 for x in doc["patches"]}
    ops = by_target[("ScaledObject", "rendezvous-serve")]
    assert {"op": "replace", "path": "/spec/maxReplicaCount", "value": 4} in ops
    resources = by_target[("StatefulSet", "rendezvous-serve")][0]["value"]
    assert resources["requests"] == {"cpu": "1000m", "memory": "125Mi"}


def test_cli_prints_a_plan_from_a_costs_file(tmp_path: Path) -> None:
    costs = tmp_path / "costs.yaml"
    costs.write_text(yaml.safe_dump(COSTS))
    result = CliRunner().invoke(main, ["plan", "--rate", "2000", "--costs", str(costs),
                                       "--vcpu-hour-price", "0.04"])
    assert result.exit_code == 0, result.output
    assert "(extrapolated)" in result.output and "price per million" in result.output
    refused = CliRunner().invoke(main, ["plan", "--rate", "2000", "--costs", str(costs),
                                        "--partitions", "1"])
    assert refused.exit_code == 1 and "partitions" in refused.output


def test_packaged_costs_file_loads() -> None:
    costs = load_costs()
    assert {"serve", "decoy", "monitor", "gateway", "broker", "redis"} <= set(costs.table)
    assert len(costs.rates) == 3
