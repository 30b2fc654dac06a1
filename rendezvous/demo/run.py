"""``rendezvous demo``: the whole pipeline on this machine under a load, then a summary.

Start (or reuse) Kafka and Redis, apply the topics under a fresh prefix, start
every component as its own process, stream events at a fixed rate, read the
results back, then report: results, latency, deadline misses, the archive, the
monitor's alerts and a backtest of the canary on what was just archived; then the model
lifecycle on that archive and its feedback (see :mod:`rendezvous.demo.lifecycle`). The
events are rows of the packaged data set, or of the user's file (``--data``, see
:mod:`rendezvous.demo.data`) for the user's own models.
Everything it started is stopped at the end, or on Ctrl-C/SIGTERM at any point.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from confluent_kafka import Producer

from rendezvous.archive import ArchiveError
from rendezvous.demo.components import Components, how_to_use, new_run, printer, watch
from rendezvous.demo.data import BUNDLED, EventSource, read_rows
from rendezvous.demo.gateway_call import call_once, curl_line
from rendezvous.demo.observe import (
    archive_stats,
    read_alerts,
    wait_archived,
    wait_windows_closed,
    windows_url,
)
from rendezvous.demo.relay_baseline import relay_line
from rendezvous.demo.signals import Interrupted, deferred, interruptible
from rendezvous.demo.stack import lease
from rendezvous.demo.summary import Summary, render
from rendezvous.demo.workload import LoadResult, ScoredReader, run_load, warm_producer
from rendezvous.local.pipeline import PipelineSpec, gateway_address
from rendezvous.model import ModelError, load_manifest, resolve_model
from rendezvous.replay.progress import Progress
from rendezvous.settings import Settings
from rendezvous.transport.topics import apply_topics

EXIT_OK = 0
EXIT_NOT_EXACTLY_ONCE = 1


@dataclass(frozen=True)
class DemoOptions:
    """What ``rendezvous demo`` can be told."""

    events: int = 2000
    rate: float = 200.0
    """Events per second, sent whatever the answers (open loop)."""
    deadline_ms: float = 50.0
    archive: Path | None = None
    """Archive directory; None = ``archive/`` in the run directory."""
    keep_running: bool = False
    """After the summary, keep the pipeline up for other clients until Ctrl-C."""
    monitor_window_s: float = 5.0
    """Short windows, so the monitor judges (and alerts on) the load before the summary."""
    wait_s: float = 60.0
    """How long to wait for the last results after the last event was sent."""
    warm_up_s: float = 10.0
    """Seconds of load at ``rate`` before the measured events, not counted: a fresh broker
    and fresh components answer their first seconds slowly (JIT, first connections)."""
    seed: int = 0
    lifecycle: bool = True
    """After the load: feedback, retrain the primary, shadow, backtest, promote, roll back."""
    data: Path | None = None
    """A CSV or Parquet file of the user's rows, one column per feature of the primary
    model: the events (cycled); None = the packaged data set."""
    label: str | None = None
    """The column of ``data`` with each row's true label: the feedback."""


def run_demo(settings: Settings, options: DemoOptions, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    """Run the demo; returns the exit status: 0, 1 when a request had no result or more
    than one, 128 + signal number when interrupted (everything is stopped either way)."""
    out, say = out or sys.stdout, printer(err or sys.stderr)
    try:
        with interruptible():
            return _demo(settings, options, say, out)
    except Interrupted as exc:
        say(f"interrupted by {exc}: everything the demo started is stopped")
        return exc.exit_status


def _demo(settings: Settings, options: DemoOptions, say: Callable[[str], None],
          out: TextIO) -> int:
    source = _source(settings, options, say)  # a bad file is refused before anything starts
    run_id, run_dir = new_run(settings, "demo")
    archive = options.archive or run_dir / "archive"
    say(f"run directory {run_dir}")
    with lease(settings, say, guard=lambda reraise: deferred(say, reraise)) as stack:
        demo_settings = stack.settings(settings, topic_prefix=f"{run_id}.")
        if options.lifecycle:  # new versions go to a models directory of this run's own
            demo_settings = demo_settings.model_copy(
                update={"models_dir": _own_models(demo_settings.models_dir, run_dir)})
        say(f"Kafka {stack.bootstrap_servers}, Redis {stack.redis_url} ({stack.origin}); "
            f"topics {demo_settings.topic_prefix}*")
        apply_topics(demo_settings)
        producer = warm_producer(demo_settings)
        spec = PipelineSpec(archive=archive, monitor_window_s=options.monitor_window_s,
                            gateway=True, shadow=options.lifecycle)
        components = Components(demo_settings, run_dir, spec, say)
        try:
            say("starting the pipeline:")
            components.start()
            summary = _measure(demo_settings, options, components, producer, archive, run_dir,
                               say, source)
            print(render(summary), file=out, flush=True)
            if options.keep_running:
                components.restart("decoy")
                print("\n".join(how_to_use(demo_settings, components)), file=out)
                print("pipeline still running: Ctrl-C stops it", file=out, flush=True)
                with contextlib.suppress(Interrupted):  # the expected end, not a failure
                    watch(components, say)
            return EXIT_OK if summary.exactly_once else EXIT_NOT_EXACTLY_ONCE
        finally:
            say("stopping the components...")
            with deferred(say, reraise=False):
                components.stop()


def _source(settings: Settings, options: DemoOptions, say: Callable[[str], None]
            ) -> EventSource:
    """Where the events come from: the packaged data set, or ``options.data`` checked
    against the primary model's features."""
    if options.data is None:
        return BUNDLED
    manifest = load_manifest(resolve_model(settings.models_dir, "primary"))
    rows = read_rows(options.data, manifest, options.label)
    say(f"events from {rows.describe()}, for {manifest.name}/{manifest.version}")
    return rows


def _measure(settings: Settings, options: DemoOptions, components: Components,
             producer: Producer, archive: Path, run_dir: Path,
             say: Callable[[str], None], source: EventSource = BUNDLED) -> Summary:
    """The load, then everything read back from the archive, the monitor and a backtest."""
    warm = warm_up(settings, options, producer, say, source)
    events = source.events(options.events, options.seed, "demo")
    reader = ScoredReader(settings, prefix="demo-")
    reader.start()
    try:
        say(f"sending {options.events:,} events at {options.rate:g}/s, "
            f"deadline {options.deadline_ms:g} ms")
        load = run_load(settings, producer, reader, events, options.rate, options.deadline_ms,
                        options.wait_s, Progress(options.events, "sent", unit="/s"))
    finally:
        reader.close()

    say("waiting for the decoy to archive every input and decision...")
    wait_archived(archive, {"input": load.sent + warm.sent,
                            "decisions": len(load.results) + len(warm.results)}, 30.0)
    components.supervisor.terminate("decoy")  # SIGTERM: it rolls what it buffered, then exits
    stats = archive_stats(archive)

    # After the archive is complete, so its counts are the load's alone.
    address = gateway_address(components.supervisor.components["gateway"])
    row = source.example()
    gateway = (curl_line(settings, address, options.deadline_ms, row),
               call_once(settings, address, options.deadline_ms, row))

    monitor = components.endpoints().get("monitor")
    closed = False
    if monitor:
        say("waiting for the monitor to close its windows...")
        closed = wait_windows_closed(windows_url(monitor), options.monitor_window_s + 15.0)
    alerts = read_alerts(settings)

    summary = Summary(options.events, options.rate, options.deadline_ms, load, stats, alerts,
                      closed, relay=relay_line(settings), gateway=gateway, warm_up=warm.sent)
    summary = _with_backtest(summary, settings, archive, run_dir / "backtest", say)
    if not options.lifecycle:
        return summary
    from rendezvous.demo import lifecycle

    sent = lifecycle.send_feedback(settings, producer, options.events, options.seed, "demo",
                                   source)
    if sent is None:
        say("no feedback labels: --data was given without --label; the model lifecycle on "
            "what production saw:")
    else:
        say(f"sent {sent:,} feedback labels; the model lifecycle on what production saw:")
    lines = lifecycle.tell(settings, components, producer, archive, run_dir, options.rate,
                           options.deadline_ms, say, source)
    return replace(summary, lifecycle=lines)


def _own_models(source: Path, run_dir: Path) -> Path:
    """A writable copy of the models directory under ``run_dir`` (retrained versions land
    there, never in the package)."""
    target = run_dir / "models"
    if not target.exists():
        shutil.copytree(source, target, symlinks=False)
    return target


def warm_up(settings: Settings, options: DemoOptions, producer: Producer,
            say: Callable[[str], None], source: EventSource = BUNDLED) -> LoadResult:
    """``options.warm_up_s`` of the same load, answered and archived but not counted."""
    n = int(options.rate * options.warm_up_s)
    if n == 0:
        return LoadResult(0, 0, 0.0, {}, {}, 0, [])
    say(f"warming up: {n:,} events at {options.rate:g}/s, not counted")
    reader = ScoredReader(settings, prefix="warmup-")
    reader.start()
    try:
        return run_load(settings, producer, reader,
                        source.events(n, options.seed + 1, "warmup"), options.rate,
                        options.deadline_ms, options.wait_s, Progress(n, "warm-up", unit="/s"))
    finally:
        reader.close()


def _with_backtest(summary: Summary, settings: Settings, archive: Path, report: Path,
                   say: Callable[[str], None]) -> Summary:
    """``summary`` plus a backtest of the canary against the answers production gave."""
    # Imported here: the backtest pulls in matplotlib, which `rendezvous up` never needs.
    from rendezvous.backtest import BacktestConfig, backtest
    from rendezvous.model import load_model, resolve_model

    say("backtesting the canary against what production answered...")
    try:
        model = load_model(resolve_model(settings.models_dir, "canary"))
        result = backtest(model, BacktestConfig(archive=archive, report=report,
                                                models_dir=settings.models_dir))
    except (ArchiveError, ModelError) as exc:
        say(f"backtest skipped: {exc}")
        return summary
    return replace(summary, backtest=result.summary, backtest_exit=result.exit_status,
                   report=str(report / "report.html"))
