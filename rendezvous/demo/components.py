"""The pipeline's processes for one run of ``demo`` or ``up``: started through
:func:`~rendezvous.local.pipeline.start_pipeline`, one line per component as it becomes
ready, every pid written to ``<run dir>/pids.json`` so nothing can be lost track of."""

from __future__ import annotations

import json
import shlex
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from rendezvous.demo.gateway_call import curl_line, example_features
from rendezvous.local.pipeline import (
    PipelineSpec,
    component_env,
    gateway_address,
    metrics_endpoints,
    start_pipeline,
)
from rendezvous.local.processes import alive
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import FeatureValue
from rendezvous.settings import Settings

PIDS_FILE = "pids.json"


class Components:
    """The components of one run, their logs under ``run_dir/logs``."""

    def __init__(self, settings: Settings, run_dir: Path, spec: PipelineSpec,
                 say: Callable[[str], None]) -> None:
        self.settings, self.run_dir, self.spec, self.say = settings, run_dir, spec, say
        self.supervisor = Supervisor(run_dir / "logs", component_env(settings))
        self.pids: dict[str, list[int]] = {}
        """Every pid each component ever had (a restart adds one)."""

    def start(self, timeout_s: float = 90.0) -> None:
        """Start every component, saying so as each becomes ready."""
        pending: list[tuple[str, float]] = []

        def on_start(name: str) -> None:
            # start_pipeline starts the next component only once the previous one is ready.
            self._ready(pending)
            pending.append((name, time.monotonic()))

        try:
            start_pipeline(self.supervisor, self.spec, timeout_s, on_start=on_start)
            self._ready(pending)
        finally:
            self.record()

    def _ready(self, pending: list[tuple[str, float]]) -> None:
        if pending:
            name, since = pending.pop()
            self.record()
            pid = self.supervisor.components[name].pid
            self.say(f"  {name:<9} ready  pid {pid:<7} ({time.monotonic() - since:.1f} s)")

    def record(self) -> None:
        """Write ``pids.json``: component -> every pid it had in this run."""
        for name, component in self.supervisor.components.items():
            known = self.pids.setdefault(name, [])
            if component.pid not in known:
                known.append(component.pid)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / PIDS_FILE).write_text(json.dumps(self.pids, indent=2) + "\n")

    def restart(self, name: str) -> None:
        self.supervisor.restart(name)
        self.record()

    def stop(self) -> None:
        """Stop every component by pid (SIGTERM, then SIGKILL); none is alive afterwards."""
        self.record()
        self.supervisor.stop_all()

    def endpoints(self) -> dict[str, str]:
        """Component -> its ``/metrics`` URL."""
        return metrics_endpoints(self.supervisor)


def example_event(row: Mapping[str, FeatureValue] | None = None) -> str:
    """A valid input event as one line of JSON, features as a list in model order
    (``row``'s, else the bundled example's)."""
    values = ",".join(json.dumps(v) if isinstance(v, str) else f"{v:.6g}"
                      for v in example_features(row))
    return f'{{"id":"id1","features":[{values}]}}'


def how_to_use(settings: Settings, components: Components,
               row: Mapping[str, FeatureValue] | None = None) -> list[str]:
    """Where the pipeline listens and how to talk to it with kcat (and curl), with ``row``
    as the example (else the bundled one)."""
    bootstrap, source, scored = (settings.kafka_bootstrap(), settings.topic("input"),
                                 settings.topic("scored"))
    lines = [
        f"Kafka        {bootstrap}",
        f"Redis        {settings.redis_url()}",
        f"input topic  {source}   (produce requests; key = request id)",
        f"scored topic {scored}   (exactly one result per request)",
        "try it with kcat (results first, in another shell):",
        f"  kcat -b {bootstrap} -t {scored} -C -o end",
        f"  kcat -b {bootstrap} -t {source} -P -k id1 <<< {shlex.quote(example_event(row))}",
        "metrics:",
    ]
    endpoints = components.endpoints()
    lines += [f"  {name:<9} {url}" for name, url in endpoints.items()]
    gateway = components.supervisor.components.get("gateway")
    if gateway is not None:
        lines += ["HTTP gateway (Open Inference Protocol v2), one row scored:",
                  f"  {curl_line(settings, gateway_address(gateway), row=row)}"]
    lines += ["status of every component:", f"  {status_command(endpoints)}"]
    lines.append(f"logs         {components.supervisor.log_dir}")
    return lines


def status_command(endpoints: dict[str, str]) -> str:
    """The exact ``rendezvous status`` command line for these /metrics endpoints."""
    return " ".join(["rendezvous status",
                     *(f"--endpoint {name}={url}" for name, url in endpoints.items())])


def printer(stream: TextIO) -> Callable[[str], None]:
    """A function that writes one line to ``stream`` at once."""

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    return say


def new_run(settings: Settings, kind: str) -> tuple[str, Path]:
    """A fresh run id (``demo-20250101-120000-ab12``) and its directory under the state dir."""
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    run_dir = settings.state_dir / kind / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    return f"{kind}-{stamp}", run_dir


def watch(components: Components, say: Callable[[str], None]) -> None:
    """Block until SIGINT/SIGTERM arrives (as an exception); say once if a component exits."""
    gone: set[int] = set()
    while True:
        for name, component in components.supervisor.components.items():
            if component.pid not in gone and not alive(component.pid):
                gone.add(component.pid)
                say(f"{name} (pid {component.pid}) exited; see {component.log}")
        time.sleep(0.5)
