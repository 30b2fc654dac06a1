"""The demo's second act: the model lifecycle on what the load just produced.

Feedback labels for the load's requests go to the ``feedback`` topic (the ground truth
arriving after the fact); then the primary is retrained from the archive and that
feedback, its new version is shadowed (a short burst of traffic shows its answers
recorded, never chosen), backtested against the primary's recorded answers, promoted,
and rolled back — each step one line, each change one record on the control topic that
the running workers follow without a restart.

Retraining needs the project's trainer, which only knows the versions it trained
(manifest ``origin: trained``): for an imported primary the steps from the retrain on
are skipped, with one line saying why and what to do instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Producer

from rendezvous.demo.components import Components
from rendezvous.demo.data import BUNDLED, EventSource
from rendezvous.demo.topic_records import TopicRecords
from rendezvous.demo.workload import ScoredReader, run_load
from rendezvous.errors import RendezvousError
from rendezvous.messages import Feedback, decode_decision, encode
from rendezvous.model import load_manifest, load_model, resolve_model
from rendezvous.registry import PromotionRefused
from rendezvous.registry.commands import change
from rendezvous.service.audit import os_user
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise, produce

MODEL = "primary"
SWAP_TIMEOUT_S = 60.0


def send_feedback(settings: Settings, producer: Producer, n: int, seed: int,
                  prefix: str, source: EventSource = BUNDLED) -> int | None:
    """The true label of each of the load's ``n`` requests, on the feedback topic; how many
    were sent (a request whose label is empty has none), None when ``source`` has no labels."""
    labels = source.labels(n, seed)
    if labels is None:
        return None
    events = source.events(n, seed, prefix)
    now = time.time() * 1000.0
    sent = 0
    for event, label in zip(events, labels, strict=True):
        if label is None:
            continue
        produce(producer, settings.topic("feedback"), encode(Feedback(event["id"], label, now)),
                event["id"])
        sent += 1
    flush_or_raise(producer)
    return sent


def tell(settings: Settings, components: Components, producer: Producer, archive: Path,
         run_dir: Path, rate: float, deadline_ms: float,
         say: Callable[[str], None], source: EventSource = BUNDLED) -> list[str]:
    """Run the lifecycle; one line per step (a failed step ends the story, saying why)."""
    from rendezvous.backtest import BacktestConfig, backtest
    from rendezvous.registry.training import train

    lines: list[str] = []
    actor = os_user()

    def step(line: str) -> None:
        say(line)
        lines.append(line)

    try:
        live = load_manifest(resolve_model(settings.models_dir, MODEL))
        if live.origin != "trained":
            step(f"retrain  skipped: {MODEL} {live.version} is imported and `model train` "
                 "retrains only versions this project trained, so there is no new version "
                 "to shadow, backtest, promote and roll back (import one: `rendezvous model "
                 f"import {MODEL} NEW.onnx --data FILE`, then `model shadow`, `backtest`, "
                 "`model promote`)")
            return lines
        trained = train(settings, MODEL, archive)
        m, window = trained.manifest, trained.manifest.training
        version = m.version
        auc = m.metrics.auc if m.metrics and m.metrics.auc is not None else float("nan")
        step(f"retrain  {MODEL} {version} from {window.rows if window else 0:,} archived inputs "
             f"with feedback: held-out AUC {auc:.4f} (sha256 {m.sha256[:12]})")

        change(settings, MODEL, "shadow", version, actor=actor)
        _wait_swap(components, f"{MODEL}-shadow", f"none -> {version}")
        recorded, burst = _shadow_burst(settings, producer, rate, deadline_ms, source)
        step(f"shadow   {MODEL} {version}: {recorded:,} of {burst:,} requests recorded its "
             "answer as a candidate, chosen 0 times")

        result = backtest(load_model(trained.directory), BacktestConfig(
            archive=archive, report=run_dir / f"backtest-{MODEL}-{version}", against=MODEL,
            models_dir=settings.models_dir))
        s = result.summary
        _record_verdict(settings, m.name, version, m.sha256, s, actor)
        verdict = "passed" if s["passed"] else "FAILED: " + "; ".join(s["failures"])
        step(f"backtest {MODEL} {version} vs {MODEL}: agreement {s['agreement']:.4f}, quantile "
             f"distance {s['quantile_distance']:.4f}, input PSI {s['input_psi']:.4f} -> "
             f"{verdict}")

        promoted = change(settings, MODEL, "promote", version, actor=actor)
        before = promoted.previous[-1]
        _wait_swap(components, MODEL, f"{before} -> {version}")
        step(f"promote  {MODEL} {version} by {actor}: live workers swapped {before} -> "
             f"{version} between two batches, no restart")

        change(settings, MODEL, "rollback", actor=actor)
        _wait_swap(components, MODEL, f"{version} -> {before}")
        step(f"rollback {MODEL} by {actor}: live workers back on {before}")
    except PromotionRefused as exc:
        step(f"promote  refused: {exc}")
    except (RendezvousError, TimeoutError) as exc:
        step(f"lifecycle stopped: {exc}")
    return lines


def _record_verdict(settings: Settings, name: str, version: str, sha256: str,
                    summary: dict[str, object], actor: str) -> None:
    from rendezvous.messages import BacktestVerdict
    from rendezvous.registry import publish_verdict

    failures = summary["failures"]
    publish_verdict(settings, BacktestVerdict(
        name, version, bool(summary["passed"]), MODEL,
        [str(f) for f in failures] if isinstance(failures, list) else [], {}, actor,
        time.time() * 1000.0, sha256=sha256))


def _wait_swap(components: Components, name: str, swap: str) -> None:
    """Until worker ``name`` logged that it swapped versions ``swap`` (e.g. ``1 -> 2``)."""
    log = components.supervisor.components[name].log
    give_up = time.monotonic() + SWAP_TIMEOUT_S
    while f"swapped versions {swap}" not in log.read_text(errors="replace"):
        if time.monotonic() > give_up:
            raise TimeoutError(f"{name} did not swap versions {swap} in {SWAP_TIMEOUT_S:.0f} s "
                               f"(see {log})")
        time.sleep(0.05)


def _shadow_burst(settings: Settings, producer: Producer, rate: float,
                  deadline_ms: float, source: EventSource = BUNDLED) -> tuple[int, int]:
    """One second of traffic while the shadow scores; (requests whose decision recorded a
    shadow answer, requests sent). Raises :class:`RendezvousError` if one was chosen."""
    n = max(int(rate), 50)
    events = source.events(n, 14, "shadow")
    reader = ScoredReader(settings, prefix="shadow")
    reader.start()
    try:
        run_load(settings, producer, reader, events, rate, deadline_ms, wait_s=30.0)
    finally:
        reader.close()
    ids = {e["id"] for e in events}
    decisions = TopicRecords(settings, "decisions")
    try:
        records = decisions.read_until(
            lambda rs: len(ids & {(r.key() or b"").decode() for r in rs}) >= n, 30.0)
    finally:
        decisions.close()
    recorded = 0
    for record in records:
        decision = decode_decision(record.value())
        if decision.id not in ids:
            continue
        shadows = [c for c in decision.candidates if c.shadow]
        recorded += bool(shadows)
        if shadows and decision.chosen == MODEL and decision.version == shadows[0].version:
            raise RendezvousError(f"a shadow answer was chosen for {decision.id}")
    return recorded, n
