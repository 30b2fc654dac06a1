"""Issue 31 (items 1, 2, 8 and 11) through the real broker and Redis: what anyone who may
write ``input`` can no longer do.

- a ``reply_to`` that is no return address is answered ``rejected`` and serve writes
  nothing in Redis (it wrote ``victim...:<id>`` before);
- the gateway's ids are 128 random bits per call (a process token and a counter before);
- a different payload under an answered id is dead-lettered and counted (dropped silently
  before), an identical replay stays silent;
- a huge ``deadline_ms`` is held to ``serve.max_deadline_ms`` and counted;
- the gateway's recovery of kept results works as a Redis user that may ``GET`` only (it
  called ``MGET`` before).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import urllib.request
from typing import Any

import msgspec
import pytest
import redis
import redis.asyncio as aioredis

from rendezvous.client import Client
from rendezvous.demo.topic_records import TopicRecords
from rendezvous.local.pipeline import gateway_address
from rendezvous.local.supervisor import Component, Supervisor
from rendezvous.messages import Scored, decode_scored, encode
from rendezvous.model import load_model, resolve_model, sample_events
from rendezvous.settings import Settings
from rendezvous.transport.clients import flush_or_raise
from rendezvous.transport.connect import redis_client
from tests.streams import producer_for

pytestmark = pytest.mark.integration

HEX32 = re.compile(r"[0-9a-f]{32}")


def start_serve(supervisor: Supervisor, env: dict[str, str] | None = None) -> int:
    """Start serve; its metrics port."""
    serve = supervisor.start("serve", ["serve", "--metrics-port", "0"], env=env)
    return int(re.findall(r"rendezvous-ready serve .*metrics=(\d+)", serve.log.read_text())[-1])


def metric(port: int, name: str, labels: str = "") -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else " ")) and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def produce(settings: Settings, *events: dict[str, Any] | bytes, partition: int = 0) -> None:
    """Produce raw events to one input partition, in order."""
    producer = producer_for(settings)
    for event in events:
        value = event if isinstance(event, bytes) else msgspec.json.encode(event)
        key = msgspec.json.decode(value)["id"].encode()
        producer.produce(settings.topic("input"), value, key, partition=partition)
    flush_or_raise(producer)


def results_by_id(settings: Settings, expected: set[str], timeout_s: float = 30,
                  settle_s: float = 1.0) -> dict[str, list[Scored]]:
    reader = TopicRecords(settings, "scored")
    records = reader.read_until(
        lambda rs: expected <= {decode_scored(r.value()).id for r in rs}, timeout_s, settle_s)
    reader.close()
    found: dict[str, list[Scored]] = {}
    for record in records:
        result = decode_scored(record.value())
        found.setdefault(result.id, []).append(result)
    return found


def dead_letters(settings: Settings, at_least: int, timeout_s: float = 10) -> list[Any]:
    reader = TopicRecords(settings, "deadletter")
    letters = reader.read_until(lambda rs: len(rs) >= at_least, timeout_s, settle_s=1.0)
    reader.close()
    return letters


def reason(letter: Any) -> str:
    return str(dict(letter.headers())["rendezvous.reason"].decode())


def features(seed: int) -> dict[str, float]:
    return dict(sample_events(1, seed=seed)[0]["features"])


def test_a_reply_to_that_is_no_return_address_is_rejected_with_no_redis_write(
        settings: Settings, supervisor: Supervisor) -> None:
    start_serve(supervisor)
    rid = f"sec-{secrets.token_hex(4)}"
    target = "victim:1"
    produce(settings, {"id": rid, "features": features(1), "deadline_ms": 300,
                       "reply_to": target, "ts": time.time() * 1000})
    with Client(settings) as client:  # a real return address: answered through Redis
        good = client.send(features(2), deadline_ms=300)
        answer = client.wait(good, timeout_s=30)
        assert answer.status == "timeout"  # no worker runs: what matters is that it came
        found = results_by_id(settings, {rid, good})
        kept = redis_client(settings).get(f"{client.reply_to}:{good}")
        assert kept is not None and decode_scored(kept).id == good
    [rejected] = found[rid]
    assert rejected.status == "rejected"
    assert "'victim:1' is not a return address" in (rejected.reason or "")
    r = redis_client(settings)
    assert r.exists(f"{target}:{rid}") == 0
    assert not list(r.scan_iter(match=f"victim*{rid}*"))
    [letter] = dead_letters(settings, 1)
    assert letter.key() == rid.encode() and "reply_to" in reason(letter)


def start_gateway(supervisor: Supervisor) -> tuple[str, Component]:
    gateway = supervisor.start("gateway", ["gateway", "--port", "0"])
    return gateway_address(gateway), gateway


def infer(address: str, settings: Settings, request_id: str) -> dict[str, Any]:
    names = load_model(resolve_model(settings.models_dir, "primary")).manifest.feature_names
    row = [features(3)[n] for n in names]
    body = {"id": request_id, "parameters": {"timeout": 100_000},  # microseconds
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, len(row)],
                        "data": row}]}
    request = urllib.request.Request(
        f"http://{address}/v2/models/{settings.gateway.model_name}/infer",
        data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def test_gateway_ids_are_128_random_bits_per_call(settings: Settings,
                                                  supervisor: Supervisor) -> None:
    from rendezvous.gateway.service import pipeline_id

    address, gateway = start_gateway(supervisor)
    ids = [infer(address, settings, "same")["parameters"]["rendezvous_id"] for _ in range(2)]
    tokens = [rid.removeprefix("same.") for rid in ids]
    assert all(rid.startswith("same.") and HEX32.fullmatch(t) for rid, t in
               zip(ids, tokens, strict=True)), ids
    assert tokens[0] != tokens[1] and tokens[0][:12] != tokens[1][:12]
    # The function the gateway calls, 10,000 times: never the same token twice.
    many = {pipeline_id("same") for _ in range(10_000)}
    assert len(many) == 10_000 and all(HEX32.fullmatch(t[5:]) for t in many)
    # Its own return address has the one shape too.
    [channel] = re.findall(r"reply_to=(\S+)", gateway.log.read_text())[-1:]
    assert re.fullmatch(re.escape(settings.topic_prefix) + r"reply\.gateway\.[0-9a-f]{32}",
                        channel)


def test_a_different_payload_under_an_answered_id_is_dead_lettered_and_counted(
        settings: Settings, supervisor: Supervisor) -> None:
    port = start_serve(supervisor)
    rid = f"sec-{secrets.token_hex(4)}"
    first = msgspec.json.encode({"id": rid, "features": features(4), "deadline_ms": 200,
                                 "ts": time.time() * 1000})
    produce(settings, first)
    [answered] = results_by_id(settings, {rid}, settle_s=0)[rid]
    assert answered.status == "timeout"  # decided: no worker runs
    forged = msgspec.json.encode({"id": rid, "features": features(5), "deadline_ms": 200,
                                  "ts": time.time() * 1000})
    after = f"sec-after-{secrets.token_hex(4)}"
    produce(settings, first, forged, {"id": after, "features": features(6), "deadline_ms": 100,
                                      "ts": time.time() * 1000})
    found = results_by_id(settings, {after})
    assert [r.status for r in found[rid]] == ["timeout"]  # answered once, as before
    [letter] = dead_letters(settings, 1)
    assert letter.key() == rid.encode() and letter.value() == forged
    assert reason(letter) == "id already answered with a different payload"
    deadline = time.monotonic() + 5  # serve updates nothing lazily here, but scrape again
    while metric(port, "rendezvous_serve_conflicting_ids_total") < 1 and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert metric(port, "rendezvous_serve_conflicting_ids_total") == 1.0


def test_a_huge_deadline_is_held_to_the_maximum_and_counted(settings: Settings,
                                                            supervisor: Supervisor) -> None:
    port = start_serve(supervisor, env={"RENDEZVOUS_SERVE__MAX_DEADLINE_MS": "1500"})
    rid = f"sec-{secrets.token_hex(4)}"
    produce(settings, {"id": rid, "features": features(7), "deadline_ms": 1e12,
                       "ts": time.time() * 1000})
    [result] = results_by_id(settings, {rid}, timeout_s=20, settle_s=0)[rid]
    assert result.status == "timeout" and result.latency_ms < 10_000  # not ~32 years
    assert metric(port, "rendezvous_serve_deadlines_clamped_total", 'bound="max"') == 1.0


def test_gateway_recovery_reads_kept_results_as_a_get_only_redis_user(
        settings: Settings) -> None:
    from rendezvous.gateway.pending import Pending, ReplyListener
    from rendezvous.replyto import new_return_address, redis_patterns
    from rendezvous.service.replies import result_key

    admin = redis.Redis.from_url(settings.redis_url())
    user, password = f"gw-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    keys, channels = redis_patterns(settings.topic_prefix)
    # A caller's least privilege: GET its kept results, SUBSCRIBE to its channel. No MGET.
    admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", "resetkeys",
                          f"~{keys}", "resetchannels", f"&{channels}", "-@all", "+ping",
                          "+hello", "+get", "+subscribe", "+unsubscribe")
    channel = new_return_address(settings.topic_prefix, "gateway")
    ids = [f"g{secrets.token_hex(4)}.{i}" for i in range(3)]
    for rid in ids[:2]:
        admin.set(result_key(channel, rid), encode(Scored(rid, "ok", score=0.5,
                                                          model="primary")), ex=60)
    try:
        async def scenario() -> list[str]:
            client = aioredis.Redis.from_url(settings.redis_url(), username=user,
                                             password=password)
            with pytest.raises(redis.exceptions.NoPermissionError):
                await client.mget([result_key(channel, rid) for rid in ids])
            pending = Pending()
            listener = ReplyListener(client, channel, pending)
            waiter = pending.add(ids)
            await listener.recover(waiter, 2.0)
            await client.aclose()
            return sorted(waiter.results)

        assert asyncio.run(scenario()) == sorted(ids[:2])  # the third was never kept
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.delete(*(result_key(channel, rid) for rid in ids[:2]))
