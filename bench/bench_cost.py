"""Cost benchmark: CPU-seconds per 1,000 requests and memory of every component, at three
rates, written as the costs file ``rendezvous plan`` reads.

    python bench/bench_cost.py [--rates 200,500,1000] [--seconds 15] [--out FILE]
                               [--measured-on TEXT]

The whole pipeline as ``rendezvous up`` starts it (primary and canary workers, serve,
decoy, monitor, HTTP gateway), each component its own process, on its own topics of
one broker. Per rate, one open-loop HTTP run through the gateway (vegeta, as
``bench/bench_gateway.py`` drives it), so every request crosses every component,
Redis (the gateway's return address) included. Around each run the CPU time
(user + system, all threads) of each process is read from ``/proc/<pid>/stat``;
after it, the peak resident memory (``VmHWM`` of ``/proc/<pid>/status``). The broker
is the lease's (or ``BENCH_KAFKA_PID``'s); Redis's pid comes from Redis itself
(``INFO server``). **CPU-s per 1,000** = CPU seconds used in the run × 1,000 / requests
sent. The load generator is not counted.

The costs file (default ``rendezvous/plan/costs.yaml``, the one the package ships, so
``make bench`` refreshes it) says where it was measured; ``run()`` returns the Markdown
section with the same table.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import uuid
from pathlib import Path

import redis
import yaml

import bench_gateway
import vegeta
from bench_pipeline import cpu_seconds
from common import progress
from rendezvous.demo.signals import run_interruptibly
from rendezvous.demo.stack import lease
from rendezvous.local.pipeline import PipelineSpec, component_env, gateway_address, start_pipeline
from rendezvous.local.supervisor import Supervisor
from rendezvous.settings import Settings
from rendezvous.transport.topics import apply_topics

REPO = Path(__file__).resolve().parent.parent
RATES = (200, 500, 1000)
SECONDS = 15.0
WARM_UP_S = 10.0
OUT = REPO / "rendezvous" / "plan" / "costs.yaml"
EXAMPLE_PRICE = 0.04
"""The vCPU-hour price of the worked example: an assumption, said so where it is shown."""
COMMAND = "make bench  (or: python bench/bench_cost.py)"
WORKERS = {"primary": "worker/primary", "canary": "worker/canary"}
"""start_pipeline's process name -> the costs file's component name; ``serve-0`` is serve."""


_log = progress("cost")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def redis_pid(url: str) -> int:
    """The pid of the Redis server at ``url`` (it says so in ``INFO server``)."""
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def processes(sup: Supervisor, broker: int | None, redis_server: int) -> dict[str, int]:
    """Costs-file component name -> pid of each process measured."""
    pids: dict[str, int] = {}
    for name, component in sup.components.items():
        label = WORKERS.get(name) or ("serve" if name.startswith("serve") else name)
        pids[label] = component.pid
    if broker is not None:
        pids["broker"] = broker
    pids["redis"] = redis_server
    return pids


def measure(settings: Settings, tmp: Path, rates: tuple[float, ...], seconds: float,
            broker: int | None, binary: str) -> list[dict]:
    """One HTTP run per rate through the whole pipeline; per rate, each component's CPU-s
    per 1,000 requests and peak RSS, and the run's p99."""
    sup = Supervisor(tmp / "logs", component_env(settings))
    try:
        start_pipeline(sup, PipelineSpec(archive=tmp / "archive", gateway=True))
        url = gateway_address(sup.components["gateway"])
        pids = processes(sup, broker, redis_pid(settings.redis_url()))
        bodies = bench_gateway.request_bodies(settings)
        model = settings.gateway.model_name
        _log(f"warm-up: {WARM_UP_S:g} s at {min(rates):g}/s")
        bench_gateway.measure_http(binary, url, model, bodies, min(rates), WARM_UP_S)
        measured = []
        for rate in rates:
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            run = bench_gateway.measure_http(binary, url, model, bodies, rate, seconds)
            sent = max(run.result.sent, 1)
            _log(f"{run.result.line()} {run.errors or ''}")
            measured.append({
                "rate": rate, "p99_ms": round(run.result.p99_ms, 1), "sent": run.result.sent,
                "components": {name: {
                    "cpu_s_per_1000": round((cpu_seconds(pid) - before[name]) * 1000 / sent, 4),
                    "rss_mib": round(peak_rss_mib(pid), 1)} for name, pid in pids.items()}})
        return measured
    finally:
        sup.stop_all()


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.machine()}, {cpus} CPUs, Python {platform.python_version()}"


def costs_document(measured: list[dict], measured_on: str) -> dict:
    """The costs file ``rendezvous plan`` reads (see rendezvous/plan/costs.py)."""
    return {"measured_on": measured_on, "machine": machine(),
            "how": "bench/bench_cost.py: open-loop HTTP through the gateway, whole pipeline, "
                   "one broker; CPU from /proc/<pid>/stat, peak RSS (VmHWM)",
            "rates": measured}


def to_markdown(measured: list[dict], measured_on: str, seconds: float) -> str:
    names = list(measured[0]["components"]) if measured else []
    lines = ["## Cost per request", "", f"Command: `{COMMAND}`", "",
             "CPU-seconds per 1,000 requests (user + system, all threads, from "
             "`/proc/<pid>/stat` around the run) and peak resident memory (VmHWM) of each "
             "process, under open-loop HTTP load through the gateway (so every request "
             f"crosses every component), {seconds:g} s per rate, one broker, replication "
             f"factor 1. Measured on: {measured_on}; {machine()}. The same numbers are the "
             "costs file `rendezvous plan` reads.", "",
             "| component | " + " | ".join(f"{m['rate']:,.0f}/s: CPU-s / 1,000 | MiB"
                                         for m in measured) + " |",
             "|---|" + "---:|---:|" * len(measured)]
    for name in names:
        cells = " | ".join(f"{m['components'][name]['cpu_s_per_1000']:.3f} | "
                           f"{m['components'][name]['rss_mib']:,.0f}" for m in measured)
        lines.append(f"| {name} | {cells} |")
    total = " | ".join(f"{sum(c['cpu_s_per_1000'] for c in m['components'].values()):.3f} | -"
                       for m in measured)
    lines += [f"| **all** | {total} |", "",
              "Price per million requests = total vCPU requested × price per vCPU-hour × "
              "10⁶ / (3,600 × rate); `rendezvous plan --rate R --vcpu-hour-price P` works it "
              "out with the headroom of each pod (no price is built in)."]
    if measured:
        top = measured[-1]
        cpu = sum(c["cpu_s_per_1000"] for c in top["components"].values())
        lines.append(
            f"Worked example, CPU busy only (no headroom): at {top['rate']:,.0f}/s the "
            f"components used {cpu:.3f} CPU-s per 1,000 requests, {cpu * 1000:,.0f} CPU-s "
            f"= {cpu * 1000 / 3600:.3f} vCPU-hours per million; at an **assumed** "
            f"{EXAMPLE_PRICE} per vCPU-hour (an assumption for the arithmetic, not a "
            f"price quote) that is {cpu * 1000 / 3600 * EXAMPLE_PRICE:.4f} per million.")
    lines.append("")
    return "\n".join(lines)


def run(rates: tuple[float, ...] = RATES, seconds: float = SECONDS, out: Path = OUT,
        measured_on: str | None = None) -> str:
    """Measure, write the costs file ``out``; the Markdown section."""
    measured_on = measured_on or f"{datetime.date.today().isoformat()}, make bench"
    with tempfile.TemporaryDirectory(prefix="rendezvous-bench-cost-") as name:
        tmp = Path(name)
        with lease(Settings(state_dir=tmp / "state"), _log) as stack:
            base = stack.settings(Settings())
            try:
                binary = vegeta.ensure(base.cache_dir, _log)
            except vegeta.Unavailable as exc:
                return f"## Cost per request\n\nNot measured: {exc}.\n"
            broker_env = os.environ.get("BENCH_KAFKA_PID")
            broker = stack.pids[0] if stack.started else (int(broker_env) if broker_env else None)
            settings = base.model_copy(update={"topic_prefix": f"bc{uuid.uuid4().hex[:6]}."})
            apply_topics(settings)
            measured = measure(settings, tmp, rates, seconds, broker, binary)
    out.write_text("# Written by bench/bench_cost.py; read by `rendezvous plan`.\n"
                   + yaml.safe_dump(costs_document(measured, measured_on), sort_keys=False,
                                    allow_unicode=True))
    _log(f"wrote {out}")
    return to_markdown(measured, measured_on, seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cost per request of every component.")
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES))
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--out", type=Path, default=OUT, help="the costs file to write")
    parser.add_argument("--measured-on", default=None,
                        help="what the file says of where it was measured")
    args = parser.parse_args(argv)
    rates = tuple(float(r) for r in args.rates.split(","))
    print(run(rates, args.seconds, args.out, args.measured_on))


if __name__ == "__main__":
    sys.exit(run_interruptibly(main))
