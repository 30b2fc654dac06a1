"""The live policy on the compacted control topic: publish it, read it, watch it."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rendezvous.core.policy import check_policy
from rendezvous.messages import POLICY_KEY, Policy, decode_policy, encode
from rendezvous.service import audit
from rendezvous.service.ports import InRecord
from rendezvous.settings import Settings
from rendezvous.transport.bad_records import BadRecords, where
from rendezvous.transport.reader import TopicReader


def publish_policy(settings: Settings, policy: Policy, actor: str | None = None) -> Policy:
    """Make ``policy`` the live one (every running ``serve`` applies it without a restart),
    stamped with who and when; the same record also goes under an audit key of its own,
    which compaction keeps (``rendezvous policy history``). Returns what was published."""
    stamped = audit.stamp(policy, settings, actor)
    audit.publish_audited(settings, POLICY_KEY, encode(stamped), "policy", stamped.at_ms,
                          "the policy")
    return stamped


class PolicyWatcher:
    """Reads the control topic from the start; :meth:`poll` returns each newer policy."""

    def __init__(self, settings: Settings) -> None:
        # No group offsets: every reader replays the compacted topic from the start. The
        # topic is idle nearly always, so fetches wait as long as librdkafka's default.
        self._reader = TopicReader(settings, settings.topic("control"), name="control-reader",
                                   leader_wait_s=0.0, config={"fetch.wait.max.ms": 500})
        self._bad = BadRecords("control-reader")

    def read_current(self, timeout_s: float = 10.0) -> Policy | None:
        """Block until the end of the topic; the policy in force, or None if never set."""
        latest = None
        deadline = time.monotonic() + timeout_s
        while not self._reader.caught_up() and time.monotonic() < deadline:
            found = self.poll(0.2)
            latest = found or latest
        return latest

    def poll(self, timeout_s: float = 0.0) -> Policy | None:
        """The newest policy among records available now, or None."""
        return newest_policy(self._reader.poll(timeout_s, 100), self._bad)

    def close(self) -> None:
        self._reader.close()


def newest_policy(records: Iterable[InRecord], bad: BadRecords) -> Policy | None:
    """The newest valid policy among control ``records``, or None; bad ones are counted
    and skipped (the policy in force stays)."""
    latest = None
    for record in records:
        if record.key() != POLICY_KEY or record.value() is None:
            continue
        try:
            policy = decode_policy(record.value())
            check_policy(policy)
        except ValueError as exc:  # Undecodable or PolicyError: keep the policy in force
            bad.skip("control", where(record), f"ignoring this policy: {exc}")
            continue
        latest = policy
    return latest


def read_policy(settings: Settings) -> Policy | None:
    """The policy in force, read from the control topic (None: the default applies)."""
    watcher = PolicyWatcher(settings)
    try:
        return watcher.read_current()
    finally:
        watcher.close()
