"""``rendezvous worker --model NAME``."""

from __future__ import annotations

import click

from rendezvous.cli.common import METRICS_PORT_HELP, clear_errors, default, settings
from rendezvous.settings import WorkerSettings


@click.command("worker")
@click.option("--model", "model_name", required=True,
              help="Model to serve: a directory name under the models dir (primary, canary).")
@click.option("--version", "version", default=None,
              help="Serve this version only; default: follow the model registry on the "
                   "control topic (the live version, swapped without a restart; the newest "
                   "under models/<name>/ until one is published).")
@click.option("--shadow", is_flag=True,
              help="Score the registry's shadow versions instead (consumer group "
                   "worker-MODEL-shadow): recorded in decisions as candidates, never chosen.")
@click.option("--max-batch", type=click.IntRange(min=1), default=None,
              help="Most records scored in one inference call."
                   + default(WorkerSettings, "max_batch"))
@click.option("--max-wait-ms", type=click.FloatRange(min=1), default=None,
              help="Longest wait for the first record of a batch; the batch is what has arrived "
                   "by then (up to --max-batch), so it grows with load."
                   + default(WorkerSettings, "max_wait_ms"))
@click.option("--delay-ms", type=click.FloatRange(min=0), default=None,
              help="Artificial delay per batch before producing (a slow model, for fallback "
                   "tests)." + default(WorkerSettings, "delay_ms"))
@click.option("--metrics-port", type=click.IntRange(min=0), default=None, help=METRICS_PORT_HELP)
@click.option("--instance-id", "instance", default=None,
              help="Static group membership id: a restarted worker with the same id gets its "
                   "partitions back at once instead of after the session timeout.")
def worker(model_name: str, version: str | None, shadow: bool, max_batch: int | None,
           max_wait_ms: float | None, delay_ms: float | None, metrics_port: int | None,
           instance: str | None) -> None:
    """Score input events with one model and write one score per event to the scores topic.

    Consumes the input topic in its own consumer group (worker-MODEL), in
    micro-batches: one decode pass, one ONNX Runtime call and one produce loop
    per batch. Each score goes to the same partition number as its input.

    Invalid events (bad JSON, NaN/inf, missing or extra features, wrong types
    or length) are counted and skipped: the rendezvous rejects them. An event
    whose deadline had already passed on arrival is shed: counted, not scored,
    and no record written, since the rendezvous has already answered it.

    Input offsets are committed only after the broker acknowledged the batch's
    scores (at-least-once). SIGTERM/SIGINT finish the in-flight batch and exit 0.
    Prints "rendezvous-ready worker ..." on stderr once partitions are assigned.
    """
    from rendezvous.worker import runner

    s = settings(metrics_port=metrics_port, worker={
        "max_batch": max_batch, "max_wait_ms": max_wait_ms, "delay_ms": delay_ms})
    with clear_errors():
        runner.run(s, model_name, version=version, role="shadow" if shadow else "live",
                   max_batch=s.worker.max_batch,
                   max_wait_ms=s.worker.max_wait_ms, delay_ms=s.worker.delay_ms,
                   metrics_port=s.metrics_port, instance=instance)
