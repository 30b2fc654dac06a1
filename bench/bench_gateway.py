"""Gateway benchmark: open-loop HTTP load through ``rendezvous gateway``, next to the
Kafka path, against one running pipeline.

    python bench/bench_gateway.py [--rates 500,1000] [--seconds 15] [--url HOST:PORT]

The pipeline must be running already (workers, serve, ...), found the usual way:
``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` / ``RENDEZVOUS_TOPIC_PREFIX`` or the
endpoints of ``rendezvous local up``. Without ``--url`` a gateway process is
started against it (port chosen by the OS) and stopped at the end.

Per rate, one open-loop HTTP run with vegeta (:mod:`vegeta`, a Go load
generator: a Python one cost more CPU than the gateway it measured): request
``i`` (one row, from the packaged data set, the live policy's deadline) is due
at ``t0 + i / rate`` and sent then whatever the answers of earlier ones (open
loop, up to ``CONNECTIONS`` keep-alive connections); its latency runs from its
*due* time to the end of its answer, so a load generator or gateway that falls
behind is counted, not hidden. A request is *within* when its answer (any row
status) came by the deadline; share within = within / sent (an error or a
missing answer counts as a miss). With ``kafka_path`` the same rate is then run on the Kafka path
(``measure_rate`` of ``bench/measure.py``: input topic -> scored topic) for
the gateway's p50 overhead. A short warm-up run precedes the measurements.
``run()`` returns the Markdown section; this module measures only when called.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

import vegeta
from common import markdown_table, progress, section
from measure import DEADLINE_MS, RateResult, latency_stats, measure_rate
from rendezvous.demo.signals import run_interruptibly
from rendezvous.local.pipeline import component_env, gateway_address
from rendezvous.local.supervisor import Supervisor
from rendezvous.model import load_manifest, resolve_model, sample_events
from rendezvous.settings import Settings

RATES = (500, 1000)
SECONDS = 15.0
WARM_UP_S = 5.0
CONNECTIONS = 256
"""Keep-alive connections at most: requests beyond wait for one (and that wait counts)."""
TARGET = 0.999
COMMAND = "python bench/bench_gateway.py"


_log = progress("gateway")


@dataclass(frozen=True)
class HttpRun:
    """One open-loop HTTP run at one rate: the same measures as the Kafka path's, and
    what only HTTP has."""

    result: RateResult
    """``received`` counts answers with HTTP 200; ``statuses`` their rows' statuses."""
    errors: dict[str, int] = field(default_factory=dict)
    """Non-200 answers by HTTP status, and client errors by exception name."""
    gateway_p50_ms: float = float("nan")
    """Median time spent inside the gateway (its ``gateway_ms`` answer parameter)."""


def request_bodies(settings: Settings, n: int = 1000) -> list[bytes]:
    """One-row inference requests (``features`` [1, F]) from the packaged data set."""
    names = load_manifest(resolve_model(settings.models_dir,
                                        settings.gateway.features_from)).feature_names
    return [msgspec.json.encode({"inputs": [{
        "name": "features", "datatype": "FP32", "shape": [1, len(names)],
        "data": [e["features"][f] for f in names]}]}) for e in sample_events(n, seed=7)]


_answer = msgspec.json.Decoder(dict)


def measure_http(binary: str, url: str, model: str, bodies: list[bytes], rate: float,
                 seconds: float, deadline_ms: float = DEADLINE_MS) -> HttpRun:
    """One open-loop HTTP run (vegeta) at ``rate`` requests/s for ``seconds`` against ``url``.

    Latency runs from each request's due time (the schedule's origin + seq / rate) to
    the end of its answer, so a load generator that fell behind is counted."""
    hits = vegeta.attack(binary, f"http://{url}/v2/models/{model}/infer", bodies, rate,
                         seconds, CONNECTIONS)
    origin = min(h.sent_s - h.seq / rate for h in hits)
    latencies_ms: list[float] = []
    gateway_ms: list[float] = []
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    lag_s = 0.0
    for hit in hits:
        late_s = hit.sent_s - (origin + hit.seq / rate)
        lag_s = max(lag_s, late_s)
        if hit.code != 200:
            errors[str(hit.code) if hit.code else (hit.error[:60] or "no answer")] += 1
            continue
        latencies_ms.append(late_s * 1000.0 + hit.latency_ms)
        body = _answer.decode(hit.body)
        for output in body["outputs"]:
            if output["name"] == "status":
                statuses.update(output["data"])
        gateway_ms.append(float(body.get("parameters", {}).get("gateway_ms", "nan")))
    gateway_ms.sort()
    sent = len(hits)
    elapsed_s = max(hits[-1].sent_s - hits[0].sent_s, 1e-9) if hits else 1e-9
    result = RateResult(
        rate=rate, seconds=seconds, sent=sent,
        send_rate=(sent - 1) / elapsed_s if sent > 1 else 0.0,
        max_send_lag_ms=lag_s * 1000.0, duplicates=0, foreign=0, statuses=dict(statuses),
        load=os.getloadavg()[0], **latency_stats(latencies_ms, deadline_ms))
    return HttpRun(result, dict(errors),
                   gateway_ms[len(gateway_ms) // 2] if gateway_ms else float("nan"))


def start_gateway(settings: Settings, log_dir: Path) -> tuple[Supervisor, str]:
    """``rendezvous gateway`` on a free port against the pipeline of ``settings``."""
    supervisor = Supervisor(log_dir, component_env(settings))
    try:
        component = supervisor.start("gateway", ["gateway", "--port", "0"], timeout_s=90)
        return supervisor, gateway_address(component)
    except BaseException:
        supervisor.stop_all()
        raise


def measure(settings: Settings, url: str, binary: str, rates: tuple[float, ...] = RATES,
            seconds: float = SECONDS, kafka_path: bool = True,
            deadline_ms: float = DEADLINE_MS) -> list[tuple[HttpRun, RateResult | None]]:
    """Per rate: the HTTP run (vegeta ``binary``), then (with ``kafka_path``) the Kafka-path
    run."""
    bodies = request_bodies(settings)
    model = settings.gateway.model_name
    _log(f"warm-up: {WARM_UP_S:g} s at {min(rates):g}/s")
    measure_http(binary, url, model, bodies, min(rates), WARM_UP_S, deadline_ms)
    results: list[tuple[HttpRun, RateResult | None]] = []
    for rate in rates:
        http = measure_http(binary, url, model, bodies, rate, seconds, deadline_ms)
        _log(f"http  {http.result.line()} {http.errors or ''}")
        kafka = measure_rate(settings, rate, seconds, deadline_ms) if kafka_path else None
        if kafka is not None:
            _log(f"kafka {kafka.line()}")
        results.append((http, kafka))
    return results


def _row(path: str, r: RateResult, extra: str = "") -> tuple[str, ...]:
    return (f"{r.rate:,.0f}", path, f"{r.sent:,}", f"{r.received:,}", f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}", f"{r.p999_ms:.1f}", f"{r.max_ms:.1f}", f"{r.adherence:.2%}",
            f"{dict(r.statuses)} {extra}")


def _note(http: HttpRun, kafka: RateResult | None) -> str:
    r = http.result
    overhead = f"{r.p50_ms - kafka.p50_ms:+.1f} ms p50 over the Kafka path, " if kafka else ""
    return (f"- {r.rate:,.0f}/s: {overhead}median time inside the gateway "
            f"{http.gateway_p50_ms:.2f} ms; load generator lag <= {r.max_send_lag_ms:.1f} ms.")


def to_markdown(results: list[tuple[HttpRun, RateResult | None]],
                command: str = COMMAND) -> str:
    rows = [row for http, kafka in results for row in (
        [_row("HTTP", http.result, str(http.errors or ""))]
        + ([_row("Kafka", kafka)] if kafka is not None else []))]
    return section(
        "HTTP gateway (Open Inference Protocol v2)",
        f"`{command}`: open-loop HTTP load, one row per request, through `rendezvous gateway` "
        f"to the same pipeline; latency from each request's due time to the end of its answer. "
        f"Next to it, the Kafka path at the same rate (input topic -> scored topic). Target: "
        f">= {TARGET:.1%} within the {DEADLINE_MS:g} ms deadline at 500/s, gateway p50 "
        f"<= Kafka path p50 + 3 ms.",
        markdown_table(
            "| rate/s | path | sent | answered | p50 ms | p99 ms | p99.9 ms | max ms | within "
            "deadline | statuses / errors |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|", rows),
        [_note(http, kafka) for http, kafka in results],
    )


def run(settings: Settings | None = None, url: str | None = None,
        rates: tuple[float, ...] = RATES, seconds: float = SECONDS,
        kafka_path: bool = True) -> str:
    """Measure the gateway against the running pipeline of ``settings`` (default: from
    the environment); start a gateway unless ``url`` (``host:port``) names one.
    Returns the Markdown section."""
    settings = settings or Settings()
    try:
        binary = vegeta.ensure(settings.cache_dir, _log)
    except vegeta.Unavailable as exc:
        _log(str(exc))
        return f"## HTTP gateway (Open Inference Protocol v2)\n\nNot measured: {exc}.\n"
    supervisor = None
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        try:
            if url is None:
                supervisor, url = start_gateway(settings, Path(tmp))
                _log(f"gateway at {url}")
            return to_markdown(measure(settings, url, binary, rates, seconds, kafka_path))
        finally:
            if supervisor is not None:
                supervisor.stop_all()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES))
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--url", default=None, help="host:port of a running gateway")
    parser.add_argument("--no-kafka-path", action="store_true")
    args = parser.parse_args(argv)
    rates = tuple(float(r) for r in args.rates.split(","))
    print(run(url=args.url, rates=rates, seconds=args.seconds,
              kafka_path=not args.no_kafka_path), end="")


if __name__ == "__main__":
    sys.exit(run_interruptibly(main))
