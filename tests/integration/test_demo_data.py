"""``rendezvous demo --data`` on a user's own model, as a user runs it: ``init`` a project,
``model import`` a primary and a canary (an sklearn Pipeline with a string column,
exported with skl2onnx's defaults), then the demo from the project directory streams the
CSV's rows (strings included) and the label column's feedback through the whole pipeline
on the session's broker."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from rendezvous.settings import Settings

from ..families import sklearn_pipeline_binary
from .test_demo import DEMO_COMPONENTS, assert_none_alive, command_env, started_pids

pytestmark = pytest.mark.integration

# The project's rendezvous.toml says where the models are: nothing in the environment may.
FROM_THE_PROJECT = ("RENDEZVOUS_MODELS_DIR", "RENDEZVOUS_TOPICS_FILE", "RENDEZVOUS_TOPIC_PREFIX")


def rendezvous(*args: str, cwd: Path, env: dict[str, str],
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rendezvous", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def project_env(settings: Settings, state: Path) -> dict[str, str]:
    env = command_env(settings, state)
    for var in FROM_THE_PROJECT:
        env.pop(var, None)
    return env


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    """A project with a primary and a canary imported (two fits of the same family: the
    same features); the data file."""
    builds = tmp_path / "primary-build", tmp_path / "canary-build"
    for build in builds:
        build.mkdir()
    primary = sklearn_pipeline_binary(builds[0], seed=0)
    canary = sklearn_pipeline_binary(builds[1], seed=1, n=300)
    env = {k: v for k, v in os.environ.items() if k not in FROM_THE_PROJECT}
    done = rendezvous("init", "churn", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    directory = tmp_path / "churn"
    for name, family in (("primary", primary), ("canary", canary)):
        done = rendezvous("model", "import", name, str(family.onnx), "--data",
                          str(primary.data), "--label", primary.label, cwd=directory, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert (directory / "models" / name / "1" / "model.yaml").is_file()
    return directory, primary.data


@pytest.mark.timeout(240)
def test_demo_streams_the_users_rows_and_feedback_through_the_pipeline(
        settings: Settings, tmp_path: Path, project: tuple[Path, Path]) -> None:
    directory, data = project
    state = tmp_path / "state"
    started = time.monotonic()
    done = rendezvous("demo", "--data", str(data), "--label", "churned", "--events", "300",
                      "--rate", "150", "--warm-up-s", "1", "--deadline-ms", "500",
                      cwd=directory, env=project_env(settings, state), timeout=220)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    summary = done.stdout
    # the user's rows, checked against the project's primary, before anything started
    assert re.search(r"^events from churn\.csv: 600 rows of 4 features, labels from "
                     r"'churned' \(600 rows\), for primary/1$", done.stderr, re.M), output
    # the same summary as ever
    assert re.search(r"^rendezvous demo: 300 events at 150/s, deadline 500 ms$", summary,
                     re.M), output
    assert re.search(r"^results\s+300\s+duplicates 0\s+missing 0$", summary, re.M), output
    by_model = re.search(r"^  by model\s+(.*)$", summary, re.M)
    assert by_model and re.search(r"\b(primary|canary) \d", by_model.group(1)), output
    assert re.search(r"^archive\s+[\d,]+ files, [\d,]+ bytes\s+input 450\s+decisions 450",
                     summary, re.M), output
    assert re.search(r"^monitor alerts\s+\S", summary, re.M), output
    assert re.search(r"^backtest\s+canary/1 vs chosen: [\d,]+ rows", summary, re.M), output
    # the gateway, called with the file's first row: one input per feature, the string
    # as BYTES, answered by one of the user's models
    with data.open(newline="") as file:
        first = next(csv.DictReader(file))
    curl = re.search(r"^  try it\s+(curl -s .*)$", summary, re.M)
    city = json.dumps({"name": "city", "datatype": "BYTES", "shape": [1],
                       "data": [first["city"]]}, separators=(",", ":"))
    assert curl and city in curl.group(1), output
    assert re.search(r"^HTTP gateway\s+HTTP 200 in [\d.]+ ms: status (ok|fallback), model "
                     r"(primary|canary), score [\d.]+", summary, re.M), output
    # feedback from the label column; the retrain needs the project's trainer: skipped
    assert re.search(r"^sent 300 feedback labels", done.stderr, re.M), output
    assert re.search(r"^lifecycle\s+retrain\s+skipped: primary 1 is imported and `model "
                     r"train` retrains only versions this project trained", summary, re.M), output
    assert not re.search(r"^\s+(shadow|promote|rollback)\s", summary, re.M), output
    assert_none_alive(started_pids(state, "demo"), output, DEMO_COMPONENTS)
    print(f"demo --data test took {time.monotonic() - started:.1f} s")


def test_a_file_that_does_not_fit_the_model_is_refused_before_anything_starts(
        settings: Settings, tmp_path: Path, project: tuple[Path, Path]) -> None:
    directory, data = project
    state = tmp_path / "state"
    bad = tmp_path / "no-city.csv"
    pacsv.write_csv(pacsv.read_csv(data).drop_columns(["city"]), bad)
    done = rendezvous("demo", "--data", str(bad), "--label", "churned", cwd=directory,
                      env=project_env(settings, state), timeout=60)
    assert done.returncode == 1
    assert ("Error: model primary/1 takes feature 'city': no-city.csv has no column 'city'"
            in done.stderr), done.stderr
    assert "Traceback" not in done.stderr
    assert not (state / "demo").exists()  # no run started
