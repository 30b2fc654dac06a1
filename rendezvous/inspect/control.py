"""The policy in force at a given time, from the control topic's history.

The live record (key ``policy``) is overwritten by each change; every change is also
kept under an audit key of its own (:mod:`rendezvous.service.audit`), so the history
survives compaction. Serve applies a policy to the requests that arrive after it: the
one in force for a request is the last published before the request arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rendezvous.messages import POLICY_KEY, Policy, Undecodable, decode_policy
from rendezvous.service.audit import AUDIT_PREFIX

AUDIT_POLICY = AUDIT_PREFIX + b"policy/"


@dataclass(frozen=True)
class Published:
    """One policy as published, and when (its ``at_ms``, else its record's time)."""

    policy: Policy
    at_ms: float


def policies(records: Iterable[tuple[bytes | None, bytes | None, int | None]]
             ) -> list[Published]:
    """Every policy among control records ``(key, value, timestamp_ms)``, oldest first,
    each change once (its live and its audit copy are one)."""
    seen: dict[tuple[float, str | None], Published] = {}
    for key, value, ts in records:
        if key != POLICY_KEY and not (key or b"").startswith(AUDIT_POLICY):
            continue
        try:
            policy = decode_policy(value)
        except Undecodable:
            continue
        at = policy.at_ms if policy.at_ms is not None else float(ts or 0)
        seen.setdefault((at, policy.actor), Published(policy, at))
    return sorted(seen.values(), key=lambda p: p.at_ms)


def in_force(history: list[Published], at_ms: float) -> tuple[Published | None,
                                                              Published | None]:
    """The policy in force at ``at_ms`` (None: none was published before it, serve's
    default applied), and the next one published after it, if any."""
    before = [p for p in history if p.at_ms <= at_ms]
    after = [p for p in history if p.at_ms > at_ms]
    return (before[-1] if before else None), (after[0] if after else None)
