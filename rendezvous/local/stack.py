"""``rendezvous local up | down | status``: the embedded Kafka + Redis for one machine.

State lives in ``settings.state_dir`` (outside the repository): ``pids.json``
for ``down``, ``endpoints.json`` for every other command, and the servers'
data and logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rendezvous.local import security
from rendezvous.local.errors import LocalStackError
from rendezvous.local.kafka import kafka_answers, restart_kafka, start_kafka
from rendezvous.local.processes import alive, stop
from rendezvous.local.redis import redis_answers, redis_server, start_redis
from rendezvous.settings import Settings


@dataclass(frozen=True)
class Endpoints:
    """Where the local stack listens, and its processes."""

    bootstrap_servers: str
    redis_url: str
    kafka_pid: int
    redis_pid: int


def _pids_file(settings: Settings) -> Path:
    return settings.state_dir / "pids.json"


def read(settings: Settings) -> Endpoints | None:
    """The running stack as recorded by ``up``, or None."""
    try:
        pids = json.loads(_pids_file(settings).read_text())
        endpoints = json.loads(settings.endpoints_file.read_text())
    except (OSError, ValueError):
        return None
    return Endpoints(endpoints["bootstrap_servers"], endpoints["redis_url"],
                     pids["kafka"], pids["redis"])


def up(settings: Settings, secure: bool = False) -> Endpoints:
    """Start Kafka and Redis (or return the ones already running). With ``secure``,
    authenticated ones: see :mod:`rendezvous.local.security`."""
    running = read(settings)
    if running and alive(running.kafka_pid) and alive(running.redis_pid):
        if secure != (security.load(settings.state_dir / "security") is not None):
            raise LocalStackError(f"a {'plain' if secure else 'secure'} local stack is running "
                                  "already: `rendezvous local down` first")
        return running
    if running:
        down(settings)  # half-dead stack from an earlier run
    redis_server()  # fail before the slow broker start
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    security.forget(state / "security")  # an earlier run's users and certificates
    material = security.prepare(state / "security") if secure else None
    kafka_pid, bootstrap = start_kafka(state, settings.cache_dir, settings.kafka_heap,
                                       settings.kafka_gc, secure=material)
    try:
        if material is not None:
            security.create_users(material, bootstrap)
            security.grant(material, bootstrap, settings.topic_prefix)
        redis_pid, url = start_redis(state, secure=material)
    except BaseException:
        stop(kafka_pid)
        security.forget(state / "security")
        raise
    _pids_file(settings).write_text(json.dumps({"kafka": kafka_pid, "redis": redis_pid}))
    settings.endpoints_file.write_text(
        json.dumps({"bootstrap_servers": bootstrap, "redis_url": url}, indent=2)
    )
    return Endpoints(bootstrap, url, kafka_pid, redis_pid)


def down(settings: Settings) -> list[int]:
    """Stop both servers by pid; returns the pids that were stopped."""
    security.forget(settings.state_dir / "security")
    try:
        pids = json.loads(_pids_file(settings).read_text())
    except (OSError, ValueError):
        return []
    stopped = []
    for pid in (pids.get("redis"), pids.get("kafka")):
        if pid and alive(pid):
            stop(pid)
            stopped.append(pid)
    leftover = [p for p in pids.values() if p and alive(p)]
    if leftover:
        raise LocalStackError(f"processes still running after stop: {leftover}")
    _pids_file(settings).unlink(missing_ok=True)
    settings.endpoints_file.unlink(missing_ok=True)
    return stopped


def restart_broker(settings: Settings, kill: bool = False) -> Endpoints:
    """Stop the running broker (SIGTERM, or SIGKILL with ``kill``) and start it again on the
    same ports and data; records its new pid. Redis is left alone."""
    running = read(settings)
    if running is None:
        raise LocalStackError(f"no local stack recorded in {settings.state_dir}: run `up` first")
    pid, bootstrap = restart_kafka(settings.state_dir, settings.cache_dir, settings.kafka_heap,
                                   settings.kafka_gc, running.kafka_pid, kill=kill)
    _pids_file(settings).write_text(json.dumps({"kafka": pid, "redis": running.redis_pid}))
    return Endpoints(bootstrap, running.redis_url, pid, running.redis_pid)


def status(settings: Settings) -> dict[str, str]:
    """One line per server: running/answering/stopped, with its address and pid."""
    running = read(settings)
    if running is None:
        return {"kafka": "stopped", "redis": "stopped"}

    def describe(pid: int, address: str, answers: bool) -> str:
        if not alive(pid):
            return f"dead (pid {pid} gone; run `rendezvous local down` then `up`)"
        return f"{'running' if answers else 'NOT answering'} at {address} (pid {pid})"

    material = security.load(settings.state_dir / "security")
    kafka_login = material.admin_config() if material else {}
    redis_login = material.redis_login(security.ADMIN) if material else {}
    secure = " (SASL_SSL, ACLs)" if material else ""
    return {
        "kafka": describe(running.kafka_pid, running.bootstrap_servers + secure,
                          kafka_answers(running.bootstrap_servers, 5, **kafka_login)),
        "redis": describe(running.redis_pid, running.redis_url + (" (ACL users)" if material
                                                                  else ""),
                          redis_answers(running.redis_url, **redis_login)),
    }
