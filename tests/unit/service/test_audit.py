"""Who and when on control records: stamping, reading any record kind that says so."""

from __future__ import annotations

import msgspec

from rendezvous.messages import Policy, decode_policy, encode
from rendezvous.service.audit import audit_key, change_of, describe, stamp
from rendezvous.settings import Settings


def test_a_policy_is_stamped_with_actor_principal_and_time() -> None:
    secure = Settings(kafka={"bootstrap_servers": "b:1", "security_protocol": "SASL_SSL",
                             "sasl_username": "admin", "sasl_password": "pw"})
    stamped = stamp(Policy(prefer=["canary"]), secure, "ana", now_ms=1_700_000_000_000)
    assert (stamped.actor, stamped.principal, stamped.at_ms) == ("ana", "User:admin",
                                                                  1_700_000_000_000)
    assert decode_policy(encode(stamped)) == stamped
    plain = stamp(Policy(), Settings(kafka={"bootstrap_servers": "b:1"}))
    assert plain.actor and plain.principal is None and plain.at_ms
    # Records written before the audit fields existed still decode.
    assert decode_policy(b'{"prefer":["primary"],"deadline_ms":30,"v":1}').actor is None


def test_any_control_record_with_who_and_when_is_a_change() -> None:
    policy = stamp(Policy(prefer=["canary"]), Settings(kafka={"bootstrap_servers": "b:1"}), "ana",
                   now_ms=1_700_000_000_123)
    change = change_of(audit_key("policy", policy.at_ms), encode(policy))
    assert change is not None and change.who == "ana" and change.at_ms == 1_700_000_000_123
    line = describe(change)
    assert line.startswith("2023-11-14T22:13:20.123Z  ana") and "policy" in line
    assert '"prefer":["canary"]' in line and "at_ms" not in line
    registry = msgspec.json.encode({"model": "primary", "version": "2", "action": "promote",
                                    "who": "bo", "when_ms": 1_700_000_000_000})
    found = change_of(b"model/primary", registry)
    assert found is not None and found.who == "bo" and "promote" in describe(found)
    assert change_of(b"policy", encode(Policy())) is None  # no who, no when
    assert change_of(b"x", b"not json") is None
    assert change_of(b"x", None) is None
