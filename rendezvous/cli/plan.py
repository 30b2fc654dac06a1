"""``rendezvous plan --rate R``."""

from __future__ import annotations

from pathlib import Path

import click

from rendezvous.cli.common import clear_errors, settings


@click.command("plan")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), required=True,
              help="Requests per second to plan for.")
@click.option("--deadline-ms", type=click.FloatRange(min=0, min_open=True), default=50.0,
              show_default=True,
              help="The requests' deadline; refused when shorter than the end-to-end p99 the "
                   "costs file measured at that rate.")
@click.option("--costs", "costs_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="A costs file written by `python bench/run.py cost` on your own machines; "
                   "default: the one shipped with the package.")
@click.option("--models-dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None,
              help="Plan one worker group per model of this directory; default: the models "
                   "dir of `rendezvous --models-dir` / RENDEZVOUS_MODELS_DIR, else the bundled.")
@click.option("--vcpu-hour-price", type=click.FloatRange(min=0), default=None,
              help="Your price of one vCPU-hour (any currency), for the price per million "
                   "requests; no price is built in.")
@click.option("--partitions", type=click.IntRange(min=1), default=None,
              help="Keep this partition count (topics that exist): a plan needing more "
                   "consumers than partitions is refused. Default: what the topics file has, "
                   "or more when the rate needs more.")
@click.option("--utilization", type=click.FloatRange(0, 1, min_open=True), default=0.5,
              show_default=True,
              help="Share of each pod's CPU request the measured load may use; the rest is "
                   "headroom for bursts and rebalances.")
@click.option("--min-replicas", type=click.IntRange(min=1), default=2, show_default=True,
              help="Fewest pods of each scaled component (2 survives one pod lost).")
@click.option("--replication-factor", type=click.IntRange(min=1), default=3, show_default=True,
              help="Replicas of each topic partition; also the fewest brokers.")
@click.option("--no-gateway", is_flag=True,
              help="Plan without the HTTP gateway (clients produce to the input topic).")
@click.option("--format", "fmt", type=click.Choice(["text", "kustomize"]), default="text",
              show_default=True,
              help="text for people; kustomize writes a kustomization.yaml overlay of "
                   "deploy/kubernetes/base (replicas, resources, autoscaler bounds).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --format kustomize: write DIR/kustomization.yaml instead of stdout.")
def plan(rate: float, deadline_ms: float, costs_file: Path | None, models_dir: Path | None,
         vcpu_hour_price: float | None, partitions: int | None, utilization: float,
         min_replicas: int, replication_factor: int, no_gateway: bool, fmt: str,
         output: Path | None) -> None:
    """Partitions, pods, brokers and the price per million requests for a request rate.

    Worked out from measured CPU-seconds per 1,000 requests and memory of each
    component (the costs file); the rules are in `rendezvous.plan.capacity` and
    docs/deploy.md. Numbers above the highest rate measured are marked
    extrapolated. The models come from --models-dir (one worker group each).
    """
    from rendezvous.model.deployment import newest_manifests
    from rendezvous.plan.capacity import Options, make_plan
    from rendezvous.plan.costs import load_costs
    from rendezvous.plan.render import as_kustomize, as_text
    from rendezvous.transport.topics import load_specs

    s = settings()
    with clear_errors():
        costs = load_costs(costs_file)
        models = tuple(m.name for m in newest_manifests(models_dir or s.models_dir))
        now = load_specs(s)["input"].partitions
        options = Options(rate=rate, models=models, partitions_now=now, deadline_ms=deadline_ms,
                          partitions=partitions, vcpu_hour_price=vcpu_hour_price,
                          utilization=utilization, min_replicas=min_replicas,
                          replication_factor=replication_factor, gateway=not no_gateway)
        result = make_plan(costs, options)
    if fmt == "text":
        click.echo(as_text(result, costs.measured_on, costs.source), nl=False)
        return
    text = as_kustomize(result, costs.measured_on)
    if output is None:
        click.echo(text, nl=False)
        return
    output.mkdir(parents=True, exist_ok=True)
    (output / "kustomization.yaml").write_text(text)
    click.echo(f"wrote {output / 'kustomization.yaml'}")
