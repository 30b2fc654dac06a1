"""deploy/grafana and deploy/prometheus name only series the monitor's /metrics exports (a
renamed metric or label fails here), and promtool accepts the alert rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from rendezvous.messages import Candidate, Decision, Feedback, decode_input
from rendezvous.model import sample_events
from rendezvous.monitor import exposition
from rendezvous.monitor.drift import DriftReference
from rendezvous.monitor.state import MonitorState, score_references

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "rendezvous-monitor.json"
RULES = REPO / "deploy" / "prometheus" / "rendezvous-monitor.rules.yml"
SERIES = re.compile(r"\b(rendezvous_[a-z0-9_]+)\b(?:\{([^}]*)\})?")
PROMQL_WORDS = {"on", "by", "without", "group_left", "group_right", "ignoring"}


def exported() -> dict[str, set[str]]:
    """Sample name -> its label names, as /metrics exports them with every window gauge set
    (a window with decisions, drift, feedback) and the pipeline's versions and lags read."""
    models = REPO / "models"
    state = MonitorState(10.0, DriftReference.load(models, "primary"), grace_s=0,
                         score_references=score_references(models))
    ts = time.time() * 1000 - 60_000
    for i in range(20):
        state.observe_decision(Decision(f"r{i}", "ok", "primary", [
            Candidate("primary", "1", 0.8, 10.0, True, service_ms=8.0),
            Candidate("canary", "1", 0.3, 2.0, True)], deadline_ms=ts + 50, decided_ms=ts,
            ts=ts - 5, version="1"))
        state.observe_feedback(Feedback(f"r{i}", i % 2), ts)
    for event in sample_events(20, seed=1):
        decoded = decode_input(json.dumps({**event, "ts": ts}).encode())
        state.observe_input(decoded, ts)  # type: ignore[arg-type]
    now = time.time() * 1000
    previous = exposition.WINDOWS.view, exposition.PIPELINE.view
    exposition.WINDOWS.view = state.window_view(state.window_starts()[0], now)
    exposition.PIPELINE.view = {"at": now, "errors": {},
                                "versions": {"primary": {"live": "1", "shadow": ["2"]}},
                                "lag": {"rendezvous": {"total": 3, "topics": {"input": 3}}}}
    exposition.ALERTS.labels("drift")
    exposition.LAG.labels("input")
    exposition.RECORDS.labels("input")
    try:
        text = exposition.metrics_text().decode()
    finally:
        exposition.WINDOWS.view, exposition.PIPELINE.view = previous
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def referenced(expressions: list[str]) -> dict[str, set[str]]:
    """Series name -> the label names its selectors match on, in PromQL ``expressions``."""
    found: dict[str, set[str]] = {}
    for expr in expressions:
        for name, selector in SERIES.findall(expr):
            labels = {m.group(1) for m in re.finditer(r"([a-z_]+)\s*(?:=~|!=|!~|=)",
                                                      selector or "")}
            found.setdefault(name, set()).update(labels)
        for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr):  # labels grouped on
            for label in filter(None, (x.strip() for x in clause.split(","))):
                found.setdefault("*", set()).add(label)
    return found


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def rule_expressions() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("source", ["grafana", "prometheus"])
def test_every_series_and_label_named_is_exported(source: str) -> None:
    expressions = dashboard_expressions() if source == "grafana" else rule_expressions()
    assert expressions
    metrics = exported()
    used = referenced(expressions)
    grouped = used.pop("*", set())
    missing = sorted(name for name in used if name not in metrics)
    assert not missing, f"{source} names series /metrics does not export: {missing}"
    for name, labels in used.items():
        assert labels <= metrics[name], f"{name} has no label {labels - metrics[name]}"
    every_label = set().union(*metrics.values())
    assert grouped <= every_label | PROMQL_WORDS, grouped - every_label


def test_dashboard_has_the_pages_panels() -> None:
    titles = {p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    assert {"Decided by the deadline", "Results by status and model", "Latency p50 / p99 (ms)",
            "Fallback and timeout rates", "Drift per feature (PSI)", "Canary disagreement",
            "Feedback accuracy per model version", "Consumer lag per group",
            "Open alerts", "Model versions in force"} <= titles


def test_a_renamed_metric_is_caught() -> None:
    assert "rendezvous_monitor_psi" in exported()
    renamed = referenced(["rendezvous_monitor_psi_index > 0.25"])
    assert [n for n in renamed if n not in exported()] == ["rendezvous_monitor_psi_index"]


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed: apt-get install -y prometheus (Debian's "
                    "package ships it) to check deploy/prometheus/*.rules.yml")
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
