"""Issue 31, items 3 and 6 without a broker: one table of what each principal may do
(Kafka ACLs, Redis users, docs/threat-model.md all derived from it), one credential file
per principal, and a supervisor that starts each component as its own principal, never
with the operator's credentials. The same table against the real secure stack:
tests/stress/test_secure_acl.py."""

from __future__ import annotations

import fnmatch
import json
import stat
from pathlib import Path

import pytest
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from rendezvous.local import security
from rendezvous.local.errors import LocalStackError
from rendezvous.local.security import (
    ADMIN,
    CREDENTIALS_DIR_ENV,
    acl_bindings,
    component_environment,
    prepare,
    principal_of,
    redis_users,
    reply_pattern,
    roles,
)

TOPICS = ("input", "scores", "scored", "decisions", "deadletter", "control", "feedback",
          "alerts")
ROOT = Path(__file__).resolve().parents[3]


def granted(prefix: str = "p.") -> set[tuple[str, str, str]]:
    """(principal, topic, READ|WRITE) the ACL bindings allow on the pipeline's topics."""
    found = set()
    for b in acl_bindings(prefix, roles(["primary", "canary"])):
        if b.restype != ResourceType.TOPIC:
            continue
        for name in TOPICS:
            full = prefix + name
            literal = b.resource_pattern_type == ResourcePatternType.LITERAL
            if (b.name == full) if literal else full.startswith(b.name):
                ops = ({"READ", "WRITE"} if b.operation == AclOperation.ALL
                       else {b.operation.name})
                found |= {(b.principal.removeprefix("User:"), name, op)
                          for op in ops & {"READ", "WRITE"}}
    return found


# Who may write and read each topic: the table of the threat model, spelled out once more
# by hand, so a change to ROLES that widens a grant fails here.
WRITERS = {"input": {"gateway", "client"}, "scores": {"worker-primary", "worker-canary"},
           "scored": {"serve"}, "decisions": {"serve"}, "deadletter": {"serve"},
           "control": set(), "feedback": {"client"}, "alerts": {"monitor"}}
READERS = {"input": {"serve", "decoy", "monitor", "worker-primary", "worker-canary"},
           "scores": {"serve"}, "scored": {"serve", "client"},
           "decisions": {"decoy", "monitor"}, "deadletter": set(),
           "control": {"serve", "gateway", "client", "monitor", "worker-primary", "worker-canary"},
           "feedback": {"monitor"}, "alerts": {"client"}}


@pytest.mark.parametrize("principal", sorted(roles(["primary", "canary"])))
@pytest.mark.parametrize("topic", TOPICS)
@pytest.mark.parametrize("operation", ["READ", "WRITE"])
def test_every_principal_topic_and_operation(principal: str, topic: str,
                                             operation: str) -> None:
    expected = principal in (READERS if operation == "READ" else WRITERS)[topic]
    assert ((principal, topic, operation) in granted()) == expected


def test_no_shared_worker_principal_and_no_group_of_another_model() -> None:
    table = roles(["primary", "canary", "fraud"])
    assert "worker" not in table
    assert {p for p in table if p.startswith("worker-")} == {
        "worker-primary", "worker-canary", "worker-fraud"}
    groups = {(b.principal, b.name) for b in acl_bindings("p.", table)
              if b.restype == ResourceType.GROUP and b.operation == AclOperation.READ}
    for model in ("primary", "canary", "fraud"):
        mine = {g for p, g in groups if p == f"User:worker-{model}"}
        assert mine == {f"p.worker-{model}", f"p.worker-{model}-shadow"}
    # Joining a group (READ) is literal for workers: worker-primary is no prefix of a
    # group worker-primary2 could use.
    assert not [b for b in acl_bindings("p.", table) if b.restype == ResourceType.GROUP
                and b.principal.startswith("User:worker-") and b.operation == AclOperation.READ
                and b.resource_pattern_type == ResourcePatternType.PREFIXED]


def redis_allowed(rule: str, command: str, name: str) -> bool:
    """Whether a valkey ACL ``rule`` (as :func:`redis_users` writes it) lets ``command``
    touch key/channel ``name``: a small interpreter of the rule's parts."""
    parts = rule.split()
    if parts == ["~*", "&*", "+@all"]:
        return True
    if f"+{command}" not in parts:
        return False
    if command in ("publish", "subscribe"):
        return any(fnmatch.fnmatchcase(name, p[1:]) for p in parts if p.startswith("&"))
    need = "R" if command in ("get", "mget") else "W"  # (mget: nobody but admin)
    for part in parts:
        if part.startswith("%") and "~" in part:
            flags, pattern = part[1:].split("~", 1)
            if need in flags and fnmatch.fnmatchcase(name, pattern):
                return True
        elif part.startswith("~") and fnmatch.fnmatchcase(name, part[1:]):
            return True
    return False


def test_redis_users_touch_return_addresses_only(tmp_path: Path) -> None:
    material = prepare(tmp_path / "s", "p.")
    users = redis_users(material)
    assert set(users) == {ADMIN, "serve", "gateway", "client"}  # the others: no Redis user
    gateway, client = "p.reply.gateway." + "a" * 32, "p.reply.client." + "b" * 32
    cases = {
        # (command, key or channel): who may
        ("set", f"{gateway}:r1"): {"admin", "serve"},
        ("set", f"{client}:r1"): {"admin", "serve"},
        ("set", "victim:r1"): {"admin"},
        ("set", "p.other"): {"admin"},
        ("get", f"{gateway}:r1"): {"admin", "gateway"},
        ("get", f"{client}:r1"): {"admin", "client"},
        ("mget", f"{gateway}:r1"): {"admin"},
        ("get", "victim:r1"): {"admin"},
        ("publish", gateway): {"admin", "serve"},
        ("publish", "victim"): {"admin"},
        ("subscribe", gateway): {"admin", "gateway"},
        ("subscribe", client): {"admin", "client"},
        ("subscribe", "victim"): {"admin"},
        ("flushall", "*"): {"admin"},
        ("config", "*"): {"admin"},
    }
    for (command, name), who in cases.items():
        allowed = {user for user, rule in users.items() if redis_allowed(rule, command, name)}
        assert allowed == who, (command, name, allowed)
    config = material.write_redis_config().read_text()
    assert config.startswith("user default off\n")
    assert not [p for p in material.redis_passwords.values() if p in config]  # hashes only
    assert stat.S_IMODE(material.write_redis_config().stat().st_mode) == 0o600


def test_reply_pattern_escapes_glob_characters() -> None:
    assert reply_pattern("p.") == "p.reply.*"
    assert reply_pattern("a*b?[c].", "gateway") == r"a\*b\?\[c\].reply.gateway.*"


def test_one_credential_file_per_principal(tmp_path: Path) -> None:
    material = prepare(tmp_path / "s", "p.", ["primary", "canary", "fraud"])
    files = {f.stem: f for f in material.users.iterdir()}
    assert set(files) == {ADMIN, *roles(["primary", "canary", "fraud"])}
    for principal, path in files.items():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text()
        others = [p for user, p in [*material.passwords.items(),
                                    *material.redis_passwords.items()] if user != principal]
        assert not [p for p in others if p in text], f"{path.name} holds another's password"
        assert json.loads(text)["kafka"]["password"] == material.passwords[principal]
    assert not (material.directory / "credentials.json").exists()
    assert security.load(material.directory) == material


def test_principal_of_each_component() -> None:
    assert principal_of(["worker", "--model", "primary", "--shadow"]) == "worker-primary"
    assert principal_of(["worker", "--model=canary"]) == "worker-canary"
    for component in ("serve", "gateway", "decoy", "monitor"):
        assert principal_of([component, "--metrics-port", "0"]) == component
    assert principal_of(["model", "promote", "primary", "2"]) is None
    with pytest.raises(LocalStackError):
        principal_of(["worker", "--model", "../admin"])


def test_a_supervisor_never_passes_the_operators_credentials(tmp_path: Path) -> None:
    material = prepare(tmp_path / "s", "p.")
    operator = {"PATH": "/bin", **material.env(ADMIN),  # a quick setup: admin exported
                "RENDEZVOUS_GATEWAY__API_KEYS": '["k" ]', "RENDEZVOUS_DECOY__REDACTION_KEY": "r",
                # and by the old names, which are still read
                "RENDEZVOUS_SASL_USERNAME": ADMIN,
                "RENDEZVOUS_SASL_PASSWORD": material.passwords[ADMIN],
                "RENDEZVOUS_REDIS_PASSWORD": material.redis_passwords[ADMIN],
                **material.component_env()}
    seen = {}
    for args in (["worker", "--model", "primary"], ["worker", "--model", "canary", "--shadow"],
                 ["serve"], ["gateway"], ["decoy"], ["monitor"]):
        env = component_environment(operator, args)
        principal = principal_of(args)
        assert env["RENDEZVOUS_KAFKA__SASL_USERNAME"] == principal
        assert env["RENDEZVOUS_KAFKA__SASL_PASSWORD"] == material.passwords[principal]
        assert env["PATH"] == "/bin" and env["RENDEZVOUS_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
        if principal in material.redis_passwords:
            assert env["RENDEZVOUS_REDIS__PASSWORD"] == material.redis_passwords[principal]
        else:  # no Redis user: none at all, not the operator's
            assert "RENDEZVOUS_REDIS__USERNAME" not in env
            assert "RENDEZVOUS_REDIS__PASSWORD" not in env
        assert ("RENDEZVOUS_GATEWAY__API_KEYS" in env) == (principal == "gateway")
        assert ("RENDEZVOUS_DECOY__REDACTION_KEY" in env) == (principal == "decoy")
        leaked = [v for k, v in env.items()
                  if v in (material.passwords[ADMIN], material.redis_passwords[ADMIN])]
        assert not leaked, args
        seen[principal] = env
    assert len(seen) == 6
    # A command that is no component gets no credentials from a supervisor at all.
    other = component_environment(operator, ["replay", "--from", "x"])
    assert not {k for k in other if k in security.SECRET_ENV}
    # Without a credentials directory (no secure stack): the environment as it is.
    plain = {k: v for k, v in operator.items() if k != CREDENTIALS_DIR_ENV}
    assert component_environment(plain, ["serve"]) == plain


def test_a_model_without_a_principal_is_named(tmp_path: Path) -> None:
    material = prepare(tmp_path / "s", "p.")
    with pytest.raises(LocalStackError, match="worker-fraud"):
        component_environment(material.component_env(), ["worker", "--model", "fraud"])


def test_supervisor_starts_each_component_as_its_own_principal(tmp_path: Path) -> None:
    """Through Supervisor.start, the path `rendezvous up` and the demo take."""
    from rendezvous.local.supervisor import Supervisor

    material = prepare(tmp_path / "s", "p.")
    supervisor = Supervisor(tmp_path / "logs", {**material.env(ADMIN),
                                                **material.component_env()})
    try:
        # `--help` is ready at once and exits: only the environment it got matters here.
        component = supervisor.start("w", ["worker", "--model", "primary", "--help"],
                                     wait=False)
        assert component.env["RENDEZVOUS_KAFKA__SASL_USERNAME"] == "worker-primary"
        assert material.passwords[ADMIN] not in component.env.values()
    finally:
        supervisor.stop_all()


def test_the_threat_model_and_governance_pages_hold_the_table() -> None:
    page = (ROOT / "docs" / "threat-model.md").read_text()
    assert security.markdown_table() in page
    rows = security.markdown_table().splitlines()[2:]  # the governance page's header is its own
    assert "\n".join(rows) in (ROOT / "docs" / "governance.md").read_text()
