"""Issue 16: Redis stopped for 10 s under open-loop load.

Scoring and the scored topic go on as before (replies never block serve's hot
path); every caller's result reaches its return address once Redis is back; serve's
metrics count the replies it had to keep waiting. The test runs a Redis of its own
(the session's is shared) and restarts it on the same port.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest
import redis

from rendezvous.demo.topic_records import TopicRecords
from rendezvous.demo.workload import OpenLoop
from rendezvous.local.pipeline import metrics_endpoints
from rendezvous.local.processes import alive, stop
from rendezvous.local.redis import start_redis
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import decode_scored
from rendezvous.model import sample_events
from rendezvous.replyto import new_return_address
from rendezvous.service.replies import result_key
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise
from tests.integration.test_poison import _metric
from tests.streams import producer_for

pytestmark = pytest.mark.integration

RATE = 100
DEADLINE_MS = 200
WARM_S, BEFORE_S, OUTAGE_S, AFTER_S = 3.0, 4.0, 10.0, 4.0


@pytest.mark.timeout(240)
def test_redis_outage_under_load(settings: Settings, supervisor: Supervisor,
                                 tmp_path: Path) -> None:
    reply_to = new_return_address(settings.topic_prefix, "outage")  # serve rejects any other
    redis_dir = tmp_path / "redis"
    redis_pid, url = start_redis(redis_dir)
    pids = [redis_pid]
    try:
        for name, args in (("primary", ["worker", "--model", "primary"]),
                           ("canary", ["worker", "--model", "canary"]),
                           ("serve", ["serve", "--metrics-port", "0"])):
            supervisor.start(name, args, env={"REDIS_URL": url})
        features = [msgspec.json.encode(e["features"]) for e in sample_events(100, seed=16)]

        def make(i: int, ts: float) -> tuple[bytes, bytes]:
            rid = b"outage-%06d" % i
            return rid, (b'{"id":"%s","features":%s,"deadline_ms":%d,"ts":%.3f,"reply_to":"%s"}'
                         % (rid, features[i % 100], DEADLINE_MS, ts, reply_to.encode()))

        producer = producer_for(settings)
        load = OpenLoop(producer, settings.topic("input"), RATE, make, track=True)
        stopped = threading.Event()
        thread = load.start(stopped)
        time.sleep(WARM_S + BEFORE_S)
        down_ms = time.time() * 1000.0
        stop(redis_pid)
        dead_ms = time.time() * 1000.0
        time.sleep(OUTAGE_S)
        redis_pid, _ = start_redis(redis_dir, port=int(url.rsplit(":", 1)[1].split("/")[0]))
        pids.append(redis_pid)
        up_ms = time.time() * 1000.0
        time.sleep(AFTER_S)
        stopped.set()
        thread.join(10)
        flush_or_raise(producer)
        sent = {f"outage-{i:06d}": load.ts(i) for i in range(load.sent)}
        assert not load.failed

        # Kafka: exactly one result each, in time, through the outage.
        reader = TopicRecords(settings, "scored")
        records = reader.read_until(lambda rs: len(rs) >= len(sent), 60, settle_s=1.0)
        reader.close()
        results: dict[str, list[tuple[str, float]]] = collections.defaultdict(list)
        decided: dict[str, float] = {}
        for record in records:
            scored = decode_scored(record.value())
            results[scored.id].append((scored.status, scored.latency_ms))
            decided[scored.id] = scored.decided_ms
        assert set(results) == set(sent)
        assert all(len(r) == 1 for r in results.values()), "a request answered twice"
        warm_ms = load.t0 + WARM_S * 1000.0  # a fresh pipeline's first seconds stall
        windows = {"warm-up": (0.0, warm_ms), "before": (warm_ms, down_ms),
                   "outage": (down_ms, up_ms), "after": (up_ms, float("inf"))}
        found = {}
        for name, (start, end) in windows.items():
            got = [results[rid][0] for rid, ts in sent.items() if start <= ts < end]
            latencies = sorted(latency for _status, latency in got)
            found[name] = (len(got), collections.Counter(status for status, _l in got),
                           latencies[int(0.99 * len(latencies))], latencies[-1])
            print(f"{name}: {len(got)} requests, {dict(found[name][1])}, "
                  f"p99 {found[name][2]:.1f} ms, max {found[name][3]:.1f} ms", file=sys.stderr)
        requests, statuses, _p99, worst = found["outage"]
        assert requests >= RATE * OUTAGE_S * 0.9
        # Nothing blocked: every result of the outage decided within 2 s of its request (a
        # hot path waiting on Redis would take the outage's 10 s). How many came by their
        # deadline depends on the machine's load, outage or not: printed, not asserted.
        assert statuses["ok"] + statuses["fallback"] > 0, found
        assert worst < 2000, found

        # Redis: every result decided once it was down at its return address once it is
        # back (the restarted Redis, without persistence, lost what it held before).
        client = redis.Redis.from_url(url)
        give_up = time.monotonic() + 30
        missing = [rid for rid in sent if decided[rid] >= dead_ms]
        assert len(missing) >= RATE * (OUTAGE_S + AFTER_S) * 0.9
        while missing and time.monotonic() < give_up:
            found = client.mget([result_key(reply_to, rid) for rid in missing])
            missing = [rid for rid, value in zip(missing, found, strict=True) if value is None]
            time.sleep(0.5)
        assert not missing, f"{len(missing)} results never reached Redis: {missing[:5]}"

        metrics = metrics_endpoints(supervisor)["serve"]
        deferred = _metric(metrics, "rendezvous_serve_replies_total", 'outcome="deferred"')
        delivered = _metric(metrics, "rendezvous_serve_replies_total", 'outcome="delivered"')
        dropped = _metric(metrics, "rendezvous_serve_replies_total", 'outcome="dropped"')
        print(f"replies: {delivered:.0f} delivered, {deferred:.0f} deferred, {dropped:.0f} "
              "dropped", file=sys.stderr)
        assert deferred >= RATE * (OUTAGE_S - 2) and dropped == 0
        assert delivered == len(sent)  # before, during and after the outage
        log = supervisor.components["serve"].log.read_text()
        assert log.count("could not deliver") == 1, "one warning per outage"
        assert "Redis answers again" in log
        assert all(alive(c.pid) for c in supervisor.components.values())
    finally:
        supervisor.stop_all()
        for pid in pids:
            stop(pid)
