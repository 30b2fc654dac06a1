"""The peer: a rendezvous written the way a faust-streaming user would write it.

    python bench/faust_peer.py        # Kafka and topics from the environment

One agent reads the input and scores topics together and keeps one mailbox
per request id in a faust table (changelog topic, in-memory store); a timer
every 5 ms answers the requests whose deadline passed. Policy: the preferred
model's (``primary``) ok score is answered at once (``ok``); at the deadline
the best other ok score (``fallback``) or ``timeout``. Results go to the
scored topic on the request's partition number, keyed by request id, as
:class:`rendezvous.messages.Scored`; invalid input is answered ``rejected``.

It uses the project's message codecs (msgspec) rather than faust records and
a heap for the deadlines rather than scanning the table, so the comparison
measures faust's client and runtime, not slow code around it. It writes no
decisions topic and no transaction: the ``scored`` record is the only output.
"""

from __future__ import annotations

import argparse
import heapq
import logging
import time
from typing import Any

import faust
import msgspec

from rendezvous.messages import Invalid, Scored, decode_input, decode_score, encode
from rendezvous.monitor.app import faust_datadir
from rendezvous.readiness import announce_ready
from rendezvous.settings import Settings

PREFER = ("primary", "canary")
TICK_S = 0.005


class Box(msgspec.Struct):
    """One request's mailbox, the table's value."""

    partition: int = -1
    ts: float = 0.0
    deadline: float = 0.0
    scores: dict[str, float] = {}
    done: bool = False


_box_decoder = msgspec.json.Decoder(Box)


def build(settings: Settings, partitions: int = 4) -> faust.App:
    """The faust app: one agent, one table, one timer."""
    app = faust.App(
        settings.group("faust-peer"), broker=f"kafka://{settings.kafka_bootstrap()}",
        store="memory://", web_enabled=False, topic_partitions=partitions,
        datadir=str(faust_datadir(settings, "faust-peer")),
        topic_replication_factor=1, consumer_auto_offset_reset="latest",
        producer_linger=0.001, broker_session_timeout=10.0, broker_heartbeat_interval=1.0,
    )
    input_topic, scores_topic = settings.topic("input"), settings.topic("scores")
    source = app.topic(input_topic, scores_topic, key_serializer="raw", value_serializer="raw")
    scored = app.topic(settings.topic("scored"), key_serializer="raw", value_serializer="raw")
    table = app.Table("mailboxes", partitions=partitions, key_type=bytes, value_type=bytes,
                      default=None)
    deadlines: list[tuple[float, bytes]] = []
    default_deadline = settings.default_deadline_ms

    def decide(rid: bytes, box: Box, now: float) -> Scored:
        for rank, model in enumerate(PREFER):
            if model in box.scores:
                return Scored(rid.decode(), "ok" if rank == 0 else "fallback",
                              score=box.scores[model], label=int(box.scores[model] >= 0.5),
                              model=model, version="1", latency_ms=now - box.ts,
                              answered=list(box.scores), decided_ms=now)
        return Scored(rid.decode(), "timeout", latency_ms=now - box.ts, decided_ms=now)

    async def rendezvous(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            rid: bytes = message.key or b""
            raw = table.get(rid)
            box = _box_decoder.decode(raw) if raw else Box(scores={})
            if box.done:
                continue
            now = time.time() * 1000.0
            if message.topic == input_topic:
                request = decode_input(event.value)
                if isinstance(request, Invalid):
                    await scored.send(key=rid, partition=message.partition, value=encode(
                        Scored(rid.decode(errors="replace"), "rejected", reason=request.reason,
                               decided_ms=now)))
                    continue
                box.partition = message.partition
                box.ts = request.ts if request.ts is not None else message.timestamp * 1000
                box.deadline = box.ts + (request.deadline_ms or default_deadline)
                heapq.heappush(deadlines, (box.deadline, rid))
            else:
                score = decode_score(event.value)
                if score.status == "ok" and score.score is not None:
                    box.scores[score.model] = score.score
            answer = box.partition >= 0 and PREFER[0] in box.scores
            box.done = answer
            # Stored before the send awaits: the timer may run meanwhile and must see it.
            table[rid] = msgspec.json.encode(box)
            if answer:
                await scored.send(key=rid, partition=box.partition,
                                  value=encode(decide(rid, box, now)))

    async def tick() -> None:
        now = time.time() * 1000.0
        while deadlines and deadlines[0][0] <= now:
            _, rid = heapq.heappop(deadlines)
            raw = table.data.get(rid)
            box = _box_decoder.decode(raw) if raw else None
            if box is None or box.done:
                continue
            box.done = True
            value = msgspec.json.encode(box)
            table.data[rid] = value  # outside an agent: write the changelog by hand
            table.send_changelog(box.partition, rid, value)
            await scored.send(key=rid, partition=box.partition,
                              value=encode(decide(rid, box, now)))

    async def ready() -> None:
        announce_ready("faust-peer")

    app.agent(source, name="rendezvous")(rendezvous)
    app.timer(TICK_S, name="deadlines")(tick)
    table.on_recover(ready)
    return app


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    logging.basicConfig(level=logging.WARNING)
    app = build(Settings())
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
