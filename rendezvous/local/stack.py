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
from rendezvous.local.endpoints import endpoints_file, write_endpoints
from rendezvous.local.errors import LocalStackError
from rendezvous.local.kafka import (
    broker_dir,
    kafka_answers,
    restart_kafka,
    start_cluster,
    start_kafka,
    threads_config,
)
from rendezvous.local.processes import alive, stop
from rendezvous.local.redis import redis_answers, redis_server, start_redis
from rendezvous.settings import Settings


@dataclass(frozen=True)
class Endpoints:
    """Where the local stack listens, and its processes."""

    bootstrap_servers: str
    redis_url: str
    broker_pids: list[int]
    """Every broker's pid, node 1 first."""
    redis_pid: int

    @property
    def kafka_pid(self) -> int:
        """The (first) broker's pid."""
        return self.broker_pids[0]

    @property
    def server_pids(self) -> list[int]:
        return [*self.broker_pids, self.redis_pid]

    def alive(self) -> bool:
        return all(alive(pid) for pid in self.server_pids)


def _pids_file(settings: Settings) -> Path:
    return settings.state_dir / "pids.json"


def read(settings: Settings) -> Endpoints | None:
    """The running stack as recorded by ``up``, or None."""
    try:
        pids = json.loads(_pids_file(settings).read_text())
        endpoints = json.loads(endpoints_file(settings.state_dir).read_text())
    except (OSError, ValueError):
        return None
    return Endpoints(endpoints["bootstrap_servers"], endpoints["redis_url"],
                     pids.get("brokers") or [pids["kafka"]], pids["redis"])


def _record(settings: Settings, endpoints: Endpoints) -> Endpoints:
    _pids_file(settings).write_text(json.dumps({"kafka": endpoints.kafka_pid,
                                                "redis": endpoints.redis_pid,
                                                "brokers": endpoints.broker_pids}))
    return endpoints


def up(settings: Settings, secure: bool = False) -> Endpoints:
    """Start Kafka (``settings.local.brokers`` brokers) and Redis, or return the ones
    already running. With ``secure`` (one broker), authenticated ones: see
    :mod:`rendezvous.local.security`."""
    if secure and settings.local.brokers > 1:
        raise LocalStackError("--secure starts one broker: drop --brokers (or set it to 1)")
    running = read(settings)
    if running and running.alive():
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
    material = (security.prepare(state / "security", settings.topic_prefix,
                                 security.models_in(settings.models_dir))
                if secure else None)
    threads = threads_config(settings.local.network_threads, settings.local.io_threads)
    if settings.local.brokers > 1:
        brokers, bootstrap = start_cluster(state, settings.cache_dir, settings.local.cluster_heap,
                                           settings.local.kafka_gc, settings.local.brokers,
                                           threads=threads)
    else:
        kafka_pid, bootstrap = start_kafka(state, settings.cache_dir, settings.local.kafka_heap,
                                           settings.local.kafka_gc, threads=threads,
                                           secure=material)
        brokers = [kafka_pid]
    try:
        if material is not None:
            security.create_users(material, bootstrap)
            security.grant(material, bootstrap)
        redis_pid, url = start_redis(state, secure=material)
    except BaseException:
        for pid in brokers:
            stop(pid)
        security.forget(state / "security")
        raise
    endpoints = _record(settings, Endpoints(bootstrap, url, brokers, redis_pid))
    write_endpoints(settings.state_dir, bootstrap, url)
    return endpoints


def down(settings: Settings) -> list[int]:
    """Stop both servers by pid; returns the pids that were stopped."""
    security.forget(settings.state_dir / "security")
    try:
        pids = json.loads(_pids_file(settings).read_text())
    except (OSError, ValueError):
        return []
    stopped = []
    servers = [pids.get("redis"), *(pids.get("brokers") or [pids.get("kafka")])]
    for pid in servers:
        if pid and alive(pid):
            stop(pid)
            stopped.append(pid)
    leftover = [p for p in [*servers, pids.get("kafka")] if p and alive(p)]
    if leftover:
        raise LocalStackError(f"processes still running after stop: {leftover}")
    _pids_file(settings).unlink(missing_ok=True)
    endpoints_file(settings.state_dir).unlink(missing_ok=True)
    return stopped


def restart_broker(settings: Settings, kill: bool = False, node: int = 1) -> Endpoints:
    """Stop broker ``node`` (SIGTERM, or SIGKILL with ``kill``) and start it again on the
    same ports and data; records its new pid. Redis and the other brokers are left alone."""
    running = read(settings)
    if running is None:
        raise LocalStackError(f"no local stack recorded in {settings.state_dir}: run `up` first")
    brokers = list(running.broker_pids)
    if not 1 <= node <= len(brokers):
        raise LocalStackError(f"no broker {node}: the local stack has {len(brokers)}")
    clustered = len(brokers) > 1
    pid, _bootstrap = restart_kafka(
        broker_dir(settings.state_dir, node) if clustered else settings.state_dir,
        settings.cache_dir, settings.local.cluster_heap if clustered else settings.local.kafka_heap,
        settings.local.kafka_gc, brokers[node - 1], kill=kill)
    brokers[node - 1] = pid
    return _record(settings, Endpoints(running.bootstrap_servers, running.redis_url, brokers,
                                       running.redis_pid))


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
    found = {}
    answers = kafka_answers(running.bootstrap_servers, timeout_s=5,
                            brokers=len(running.broker_pids), **kafka_login)
    for node, pid in enumerate(running.broker_pids, start=1):
        name = "kafka" if len(running.broker_pids) == 1 else f"kafka-{node}"
        found[name] = describe(pid, running.bootstrap_servers.split(",")[node - 1] + secure,
                               answers)
    found["redis"] = describe(running.redis_pid, running.redis_url + (" (ACL users)" if material
                                                                      else ""),
                              redis_answers(running.redis_url, **redis_login))
    return found
