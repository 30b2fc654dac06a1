"""Inference micro-benchmark: ONNX Runtime vs scikit-learn ``predict_proba``.

    python bench/bench_inference.py

Both engines score the same rows (drawn from the data set) on one core: ORT
sessions are single-threaded (as a worker runs them) and BLAS is limited to
one thread for scikit-learn. ``run()`` returns the Markdown section that
``make bench`` puts into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
import onnxruntime as ort
import sklearn
from threadpoolctl import threadpool_limits

from common import markdown_table, section
from rendezvous.model import load_dataset, load_model, resolve_model

REPO = Path(__file__).resolve().parents[1]
BATCHES = (1, 64, 256, 512)
NAMES = ("primary", "canary")
ROUND_S = 0.06
"""Target duration of one timed round; ROUNDS rounds per measurement."""
ROUNDS = 7


def _load_train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rendezvous_train", REPO / "models" / "train.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seconds_per_call(fn: Callable[[], object]) -> float:
    """Median seconds per call of ``fn`` over ROUNDS rounds of ~ROUND_S each."""
    for _ in range(3):
        fn()
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < ROUND_S / 3:  # calibrate the calls per round
        fn()
        calls += 1
    per_round = max(1, round(calls * 3))
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(per_round):
            fn()
        samples.append((time.perf_counter() - started) / per_round)
    return statistics.median(samples)


def measure() -> list[dict[str, float | int | str]]:
    """One row per (model, batch): µs/call and rows/s of each engine."""
    fitted = _load_train().fit_models()
    rows = load_dataset().X
    rng = np.random.default_rng(0)
    results: list[dict[str, float | int | str]] = []
    with threadpool_limits(limits=1):
        for name in NAMES:
            model = load_model(resolve_model(REPO / "models", name))
            estimator = fitted[name]
            for batch in BATCHES:
                x = np.ascontiguousarray(rows[rng.integers(0, len(rows), size=batch)])
                onnx_s = seconds_per_call(partial(model.predict, x))
                sk_s = seconds_per_call(partial(estimator.predict_proba, x))
                results.append({"model": name, "batch": batch, "onnx_s": onnx_s, "sklearn_s": sk_s})
    return results


def to_markdown(results: list[dict[str, float | int | str]]) -> str:
    """The results as a Markdown section with its heading, command and table."""
    rows = []
    for r in results:
        batch, onnx_s, sk_s = int(r["batch"]), float(r["onnx_s"]), float(r["sklearn_s"])
        rows.append((r["model"], batch, f"{onnx_s * 1e6:,.1f}", f"{batch / onnx_s:,.0f}",
                     f"{sk_s * 1e6:,.1f}", f"{batch / sk_s:,.0f}", f"{onnx_s / sk_s:.3f}"))
    return section(
        "Inference: ONNX Runtime vs scikit-learn",
        "Command: `python bench/bench_inference.py`",
        f"One core: ORT sessions with 1 intra-op and 1 inter-op thread, BLAS limited to 1 thread "
        f"for scikit-learn. onnxruntime {ort.__version__}, scikit-learn {sklearn.__version__}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs. Median of {ROUNDS} rounds; "
        "`primary` = GradientBoosting (200 trees, depth 4), `canary` = StandardScaler + "
        "LogisticRegression. Ratio < 1 means ONNX Runtime is faster.",
        markdown_table("| model | batch | ORT µs/call | ORT rows/s | sklearn µs/call | sklearn "
                       "rows/s | ORT/sklearn time |", "|---|---:|---:|---:|---:|---:|---:|", rows),
    )


def run() -> str:
    """Run the benchmark and return its Markdown section."""
    return to_markdown(measure())


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    print(run())
