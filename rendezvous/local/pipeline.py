"""The whole pipeline as separate processes on one machine: used by ``demo``, ``up``,
the benchmarks and the chaos run, so they all run the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rendezvous.local import security
from rendezvous.local.errors import LocalStackError
from rendezvous.local.security import Secure
from rendezvous.local.supervisor import Component, Supervisor
from rendezvous.readiness import READY_MARK
from rendezvous.settings import Settings


@dataclass(frozen=True)
class PipelineSpec:
    """What to start; every component is a ``rendezvous`` subcommand in its own process."""

    archive: Path
    primary_delay_ms: float = 0.0
    serve_instances: int = 1
    monitor: bool = True
    monitor_window_s: float = 10.0
    decoy: bool = True
    gateway: bool = False
    """The HTTP gateway too (``rendezvous up`` and the demo; the benchmarks start their own)."""
    shadow: bool = False
    """Also start a shadow worker of the primary (scores the registry's shadow versions)."""
    extra: dict[str, list[str]] = field(default_factory=dict)
    """Extra arguments per component name (``primary``, ``canary``, ``serve-0``, ...)."""


def component_env(settings: Settings) -> dict[str, str]:
    """Environment that points child processes at the same Kafka, Redis and topics.

    On a ``rendezvous local up --secure`` stack (the one of ``settings.state_dir``, when
    these settings talk to it), also its TLS settings and its credentials directory: a
    :class:`~rendezvous.local.supervisor.Supervisor` then starts each component as its
    own principal (``serve``, ``worker-<model>``, ...) whatever user the operator is."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap(),
        "REDIS_URL": settings.redis_url(),
        "RENDEZVOUS_TOPIC_PREFIX": settings.topic_prefix,
        "RENDEZVOUS_TOPICS_FILE": str(Path(settings.topics_file).resolve()),
        "RENDEZVOUS_MODELS_DIR": str(Path(settings.models_dir).resolve()),
        "PYTHONUNBUFFERED": "1",
    }
    material = secure_stack(settings)
    if material is not None:
        env.update(material.component_env())
    return env


def secure_stack(settings: Settings) -> Secure | None:
    """The security material of the local secure stack these settings talk to, or None."""
    from rendezvous.local.stack import read

    material = security.load(settings.state_dir / "security")
    running = read(settings)
    if material is None or running is None:
        return None
    if running.bootstrap_servers != settings.kafka_bootstrap():
        return None  # another Kafka than the local secure one
    if material.prefix != settings.topic_prefix:
        raise LocalStackError(
            f"the secure local stack granted its principals topic prefix "
            f"{material.prefix!r}, not {settings.topic_prefix!r}: set RENDEZVOUS_TOPIC_PREFIX"
            f"={material.prefix} (or restart it with `local down`, `local up --secure`)")
    return material


def commands(spec: PipelineSpec) -> dict[str, list[str]]:
    """Component name -> ``rendezvous`` arguments, in start order."""
    cmds: dict[str, list[str]] = {
        "primary": ["worker", "--model", "primary", "--instance-id", "primary-0",
                    "--metrics-port", "0", "--delay-ms", str(spec.primary_delay_ms)],
        "canary": ["worker", "--model", "canary", "--instance-id", "canary-0",
                   "--metrics-port", "0"],
    }
    if spec.shadow:
        cmds["primary-shadow"] = ["worker", "--model", "primary", "--shadow", "--instance-id",
                                  "primary-shadow-0", "--metrics-port", "0"]
    if spec.decoy:
        cmds["decoy"] = ["decoy", "--archive", str(spec.archive), "--instance-id", "decoy-0",
                         "--roll-seconds", "5", "--metrics-port", "0"]
    for i in range(spec.serve_instances):
        cmds[f"serve-{i}"] = ["serve", "--instance-id", str(i), "--metrics-port", "0"]
    if spec.gateway:
        cmds["gateway"] = ["gateway", "--port", "0"]
    if spec.monitor:
        cmds["monitor"] = ["monitor", "--metrics-port", "0",
                           "--window-s", str(spec.monitor_window_s)]
    for name, extra in spec.extra.items():
        cmds[name] = [*cmds[name], *extra]
    return cmds


def start_pipeline(supervisor: Supervisor, spec: PipelineSpec, timeout_s: float = 90.0,
                   on_start: Callable[[str], None] | None = None) -> None:
    """Start every component and wait until each says it is ready (``on_start(name)`` first)."""
    for name, args in commands(spec).items():
        if on_start is not None:
            on_start(name)
        supervisor.start(name, args, timeout_s=timeout_s)


def metrics_endpoints(supervisor: Supervisor) -> dict[str, str]:
    """Component name -> its /metrics URL, read from the ready lines."""
    found = {}
    for name, component in supervisor.components.items():
        text = component.log.read_text(errors="replace") if component.log.exists() else ""
        match = re.findall(r"rendezvous-ready \S+ .*?(?:metrics|port)=(\d+)", text)
        if match:
            found[name] = f"http://127.0.0.1:{match[-1]}/metrics"
    return found


_GATEWAY_URL = re.compile(rf"{READY_MARK} gateway http://([\d.]+:\d+)")


def gateway_address(component: Component) -> str:
    """``host:port`` of a started ``rendezvous gateway``, read from its ready line."""
    found = _GATEWAY_URL.findall(component.log.read_text(errors="replace"))
    if not found:
        raise LocalStackError(f"no gateway address in {component.log}")
    return str(found[-1])
