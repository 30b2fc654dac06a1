"""A real Redis server (Debian's ``redis-server``) on a free loopback port."""

from __future__ import annotations

from pathlib import Path

from rendezvous.local.processes import free_port, require, spawn, wait_until

REDIS_FIX = "install Redis (e.g. `apt-get install redis-server`)"


def start_redis(run_dir: Path, timeout_s: float = 20) -> tuple[int, str]:
    """Start redis-server on 127.0.0.1; returns (pid, url) once it answers PING."""
    server = require("redis-server", REDIS_FIX)
    port = free_port()
    data = run_dir / "redis-data"
    data.mkdir(parents=True, exist_ok=True)
    log = run_dir / "redis.log"
    pid = spawn(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(data), "--protected-mode", "yes"],
        log,
    )
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis_answers(url), timeout_s, "Redis server", pid, log)
    return pid, url


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False
