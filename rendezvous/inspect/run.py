"""What ``rendezvous inspect`` does, in order: find the request's records (topics or
archive), the policy of its time, its Redis reply; then tell its story."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException
from msgspec.structs import replace

from rendezvous.archive.retention import Selector
from rendezvous.demo.wording import describe_result
from rendezvous.errors import SettingsError
from rendezvous.inspect.archive import search_archive
from rendezvous.inspect.control import Published, policies
from rendezvous.inspect.parts import ReplyPart, Story
from rendezvous.inspect.records import Found
from rendezvous.inspect.story import ReplyLookup, stories
from rendezvous.inspect.topics import TopicSearch, around
from rendezvous.inspect.window import Window
from rendezvous.messages import DEADLINE_BOUNDS, Invalid, Undecodable, decode_input, decode_scored
from rendezvous.service.replies import result_key
from rendezvous.settings import Settings
from rendezvous.transport.connect import redis_client

log = logging.getLogger(__name__)

FOLLOWING = ("scores", "scored", "decisions")
"""Co-partitioned with the input: read on the input's partition number only."""
ARCHIVE_TOPICS = ("input", "deadletter", "scores", "scored", "decisions", "feedback")


@dataclass
class Inspection:
    """What was searched, and the story of every request found (a gateway call's id finds
    each of its rows)."""

    request_id: str
    searched: str
    window: Window
    stories: list[Story] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.stories)

    def not_found(self) -> str:
        return (f"{self.request_id!r} not found in {self.searched}, searched "
                f"{self.window.describe()}")


def inspect_request(settings: Settings, request_id: str, window: Window,
                    archive: Path | None = None, timeout_s: float = 30.0) -> Inspection:
    """The story of ``request_id`` (and of the rows the gateway made of it) in ``window``."""
    selector = Selector(ids=(request_id,))
    if archive is not None:
        return _from_archive(settings, request_id, selector, window, archive, timeout_s)
    return _from_topics(settings, request_id, selector, window, timeout_s)


def _from_topics(settings: Settings, request_id: str, selector: Selector, window: Window,
                 timeout_s: float) -> Inspection:
    names = ", ".join(["input", "deadletter", *FOLLOWING, "feedback", "control"])
    found = Inspection(request_id, f"the topics {names} (prefix {settings.topic_prefix!r})",
                       window)
    search = TopicSearch(settings, timeout_s)
    try:
        records = search.read_all("input", window, selector)
        dead = search.read_all("deadletter", window, selector)
        unfinished = records.unfinished + dead.unfinished
        everything = records.found + dead.found
        if not everything:
            if unfinished:
                found.searched += f" (not read to the end: {'; '.join(unfinished)})"
            return found
        history = policies((r.key(), r.value(), r.timestamp()[1])
                           for r in search.read_compacted("control"))
        ranges = around((_deadline(r, history, settings) for r in records.found), window)
        for topic in FOLLOWING:
            read = search.read(topic, ranges, selector)
            everything += read.found
            unfinished += read.unfinished
        first = min((r.timestamp_ms for r in everything if r.timestamp_ms), default=None)
        since = Window(first or window.start_ms, window.end_ms)
        feedback = search.read_all("feedback", since, selector)
        everything += feedback.found
        unfinished += feedback.unfinished
    finally:
        search.close()
    missing = [f"not read to the end: {u}" for u in unfinished]
    found.stories = stories(everything, history, "kafka", _reply_lookup(settings), missing)
    return found


def _deadline(record: Found, history: list[Published], settings: Settings
              ) -> tuple[int, float, float]:
    """``(partition, time, deadline)`` of an input record: where and until when its
    answers, result and decision are looked for."""
    at = float(record.timestamp_ms or 0)
    event = decode_input(record.value)
    if isinstance(event, Invalid):
        return record.partition, at, at
    default = max([settings.default_deadline_ms, *(p.policy.deadline_ms for p in history)])
    budget = min(event.deadline_ms or default, settings.serve.max_deadline_ms
                 or DEADLINE_BOUNDS.max_ms)
    start = event.ts if event.ts is not None else at
    return record.partition, min(at, start), max(at, start) + budget


def _from_archive(settings: Settings, request_id: str, selector: Selector, window: Window,
                  root: Path, timeout_s: float) -> Inspection:
    held = sorted(p.name for p in Path(root).iterdir() if p.is_dir()) \
        if Path(root).is_dir() else []
    found = Inspection(request_id, f"the archive {root} ({', '.join(held) or 'empty'})",
                       window)
    records = search_archive(root, selector, window)
    if not records:
        return found
    missing = [f"{', '.join(t for t in ARCHIVE_TOPICS if t not in held)}: not in the archive "
               "(the decoy records only the topics it is told to)"]
    history: list[Published] = []
    try:
        search = TopicSearch(settings, timeout_s)
        try:
            history = policies((r.key(), r.value(), r.timestamp()[1])
                               for r in search.read_compacted("control"))
        finally:
            search.close()
        policy_known = True
    except (SettingsError, KafkaException) as exc:
        missing.append(f"control (the policy): {exc}")
        policy_known = False
    made = stories(records, history, "archive", _reply_lookup(settings), missing)
    if not policy_known:
        made = [replace(s, policy=None) for s in made]
    found.stories = made
    return found


def _reply_lookup(settings: Settings) -> ReplyLookup:
    """What Redis holds under a request's return address (asked once per request)."""
    client = None

    def lookup(reply_to: str, request_id: str) -> ReplyPart:
        nonlocal client
        key = result_key(reply_to, request_id)
        try:
            if client is None:
                client = redis_client(settings)
                client.connection_pool.connection_kwargs.update(
                    socket_timeout=2.0, socket_connect_timeout=2.0)
            body, ttl = client.get(key), client.ttl(key)
        except SettingsError:
            return ReplyPart(key, "not asked: no Redis configured (REDIS_URL)")
        except Exception as exc:  # noqa: BLE001 - redis-py's errors: say it, tell the rest
            return ReplyPart(key, f"not asked: Redis did not answer ({exc})")
        if body is None:
            return ReplyPart(key, "gone (expired, or never written)")
        try:
            result = decode_scored(body if isinstance(body, bytes) else body.encode())
        except Undecodable as exc:
            return ReplyPart(key, "held", f"not a result: {exc}", int(ttl))
        words = describe_result(result.status, result.score, result.model, result.label,
                                result.reason)
        return ReplyPart(key, "held", words, int(ttl))

    return lookup
