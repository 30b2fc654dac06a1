"""The worker's per-row cost for the bundled models and a user's own, old code against new.

    python bench/bench_worker_models.py [--old REV] [--runs N]

Measures rows per CPU-second of the worker's whole hot path except Kafka itself:
decode and check each input record (``RowBuilder``), one ONNX Runtime call per batch
of 512 (``Model.predict``), read the outputs per task, build and encode one
``Score`` per row (``Scorer``, with a producer that drops what it is given). The
broker's share is the same whatever the model, and ``bench_worker.py`` measures it.

Two parts, each run in a child process pinned to one CPU:

- **families**: the bundled primary and canary, and one model of each family a
  user brings (``tests/families.py``: an sklearn Pipeline with a string column, a
  LightGBM multiclass with ZipMap, a regressor, an ``onnx.helper`` graph), each
  imported with ``rendezvous model import``.
- **old against new**: the bundled primary on this checkout and on ``--old`` (a git
  revision, checked out in a temporary worktree), in interleaved runs (``--runs``
  each), medians compared: the generic output handling must not cost the default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, markdown_table, section

OLD_REV = "f104da8"
"""The last commit before a model was anything but the bundled binary classifier."""
RUNS = 7
BATCH = 512
ROWS = 20_000
CHILD_SECONDS = 2.0


class _Message:
    """What the worker reads of a ``confluent_kafka.Message``."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def value(self) -> bytes:
        return self._value

    def partition(self) -> int:
        return 0

    def timestamp(self) -> tuple[int, int]:
        return (1, int(time.time() * 1000))


class _DroppingProducer:
    def produce(self, *args: object, **kwargs: object) -> None:
        pass

    def poll(self, timeout: float = 0) -> int:
        return 0


def child(models_dir: str, name: str, events_file: str) -> None:
    """Print ``{"rows_per_cpu_s": ...}`` for model ``name``: decode, score, encode."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from rendezvous.model import load_model, resolve_model
    from rendezvous.worker.runner import Scorer

    model = load_model(resolve_model(Path(models_dir), name))
    events = [line.encode() for line in Path(events_file).read_text().splitlines()]
    records = [_Message(e) for e in events]
    batches = [records[i:i + BATCH] for i in range(0, len(records), BATCH)]
    scorer = Scorer(model, _DroppingProducer(), "scores", 3_600_000.0)  # type: ignore[arg-type]
    for batch in batches[:3]:  # warm up: ORT's first calls allocate
        scorer(batch, lambda *a: None)
    rows, started = 0, time.process_time()
    while time.process_time() - started < CHILD_SECONDS:
        for batch in batches:
            rows += scorer(batch, lambda *a: None)
    print(json.dumps({"rows_per_cpu_s": rows / (time.process_time() - started)}))


def _run_child(pythonpath: Path, models_dir: Path, name: str, events: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(models_dir),
                          name, str(events)], env=env, capture_output=True, text=True, check=True,
                         cwd=pythonpath)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rows_per_cpu_s"])


def _bundled_events(path: Path) -> Path:
    import msgspec

    from rendezvous.model import sample_events

    lines = [msgspec.json.encode({**e, "deadline_ms": 3_600_000.0}).decode()
             for e in sample_events(ROWS, seed=11)]
    path.write_text("\n".join(lines))
    return path


def _family_events(family: object, path: Path) -> Path:
    """Events of a family's own rows, features by name, strings included."""
    import msgspec
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    data = Path(family.data)  # type: ignore[attr-defined]
    table = pq.read_table(data) if data.suffix == ".parquet" else pacsv.read_csv(data)
    columns = {n: table.column(n).to_pylist() for n in family.features}  # type: ignore[attr-defined]
    n = table.num_rows
    lines = []
    for i in range(ROWS):
        features = {k: (v[i % n] if isinstance(v[i % n], str) else float(v[i % n]))
                    for k, v in columns.items()}
        lines.append(msgspec.json.encode({"id": f"r{i}", "features": features,
                                          "deadline_ms": 3_600_000.0}).decode())
    path.write_text("\n".join(lines))
    return path


def families(tmp: Path) -> list[dict[str, object]]:
    """Rows per CPU-second of the bundled models and of each family (median of 3)."""
    sys.path.insert(0, str(REPO))
    from click.testing import CliRunner

    from rendezvous.cli import main
    from tests import families as fam

    results: list[dict[str, object]] = []
    bundled = _bundled_events(tmp / "bundled.jsonl")
    for name in ("primary", "canary"):
        rates = [_run_child(REPO, REPO / "models", name, bundled) for _ in range(3)]
        results.append({"model": f"bundled {name}", "task": "binary",
                        "rate": statistics.median(rates)})
        _progress(f"bundled {name}: {results[-1]['rate']:,.0f} rows/CPU-s")
    models_dir = tmp / "models"
    for builder in fam.ALL:
        family = builder(tmp / builder.__name__, seed=1)
        args = ["--models-dir", str(models_dir), "model", "import", builder.__name__,
                str(family.onnx), "--data", str(family.data), "--label", family.label]
        result = CliRunner().invoke(main, args)
        if result.exit_code != 0:
            raise RuntimeError(f"model import of {builder.__name__} failed: {result.output}")
        events = _family_events(family, tmp / f"{builder.__name__}.jsonl")
        rates = [_run_child(REPO, models_dir, builder.__name__, events) for _ in range(3)]
        results.append({"model": builder.__name__, "task": family.task,
                        "rate": statistics.median(rates)})
        _progress(f"{builder.__name__}: {results[-1]['rate']:,.0f} rows/CPU-s")
    return results


def old_against_new(tmp: Path, old: str, runs: int) -> dict[str, list[float]]:
    """Rows per CPU-second of the bundled primary on ``old`` and on this checkout,
    interleaved ``runs`` times (old, new, old, new...), so a busy moment hits both."""
    worktree = tmp / "old"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), old],
                   check=True, capture_output=True)
    try:
        events = _bundled_events(tmp / "bundled.jsonl")
        found: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(runs):
            found["old"].append(_run_child(worktree, worktree / "models", "primary", events))
            found["new"].append(_run_child(REPO, REPO / "models", "primary", events))
            _progress(f"run {i + 1}/{runs}: old {found['old'][-1]:,.0f}, "
                      f"new {found['new'][-1]:,.0f} rows/CPU-s")
        return found
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
                       check=False, capture_output=True)


def to_markdown(rows: list[dict[str, object]], versus: dict[str, list[float]], old: str) -> str:
    old_median, new_median = statistics.median(versus["old"]), statistics.median(versus["new"])
    change = (new_median / old_median - 1) * 100
    return section(
        "Worker per-row cost: the bundled models and a user's own",
        "Command: `python bench/bench_worker_models.py` (section `models` of `make bench`)",
        "Rows per CPU-second of the worker's hot path without Kafka (decode and check each "
        f"record, one ONNX Runtime call per batch of {BATCH}, read the outputs per task, "
        "build and encode a score per row), one process pinned to one CPU, median of 3 runs. "
        "Families as `tests/families.py` builds them, each imported with `model import`.",
        markdown_table("| model | task | rows per CPU-second |", "|---|---|---|",
                       [(r["model"], r["task"], f"{float(r['rate']):,.0f}")  # type: ignore[arg-type]
                        for r in rows]),
        f"Old code ({old}) against new on the bundled primary, {len(versus['old'])} interleaved "
        "runs each:",
        markdown_table("| code | runs (rows per CPU-second) | median |", "|---|---|---|", [
            (f"old {old}", ", ".join(f"{v:,.0f}" for v in versus["old"]), f"{old_median:,.0f}"),
            ("new", ", ".join(f"{v:,.0f}" for v in versus["new"]), f"{new_median:,.0f}")]),
        f"New against old: {change:+.1f} % (the issue's bound: no more than 5 % slower).",
    )


def _progress(text: str) -> None:
    print(f"[bench models] {text}", file=sys.stderr, flush=True)


def run(old: str = OLD_REV, runs: int = RUNS) -> str:
    """Both parts; the Markdown section."""
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        rows = families(Path(tmp))
        versus = old_against_new(Path(tmp), old, runs)
    return to_markdown(rows, versus, old)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default=OLD_REV, help=f"git revision of the old code "
                        f"[default: {OLD_REV}]")
    parser.add_argument("--runs", type=int, default=RUNS,
                        help=f"interleaved runs of old and new each [default: {RUNS}]")
    parser.add_argument("--child", nargs=3, metavar=("MODELS_DIR", "NAME", "EVENTS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(run(args.old, args.runs))


if __name__ == "__main__":
    main()
