"""The secure local stack's material, without a broker: certificates, ACLs, Redis users,
and that passwords stay out of reprs."""

from __future__ import annotations

import stat
from pathlib import Path

from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType
from cryptography import x509
from cryptography.x509.oid import NameOID

from rendezvous.local.security import (
    ADMIN,
    BROKER_CN,
    ROLES,
    acl_bindings,
    broker_config,
    format_argfile,
    load,
    prepare,
)
from rendezvous.settings import Settings


def test_certificates_and_private_files(tmp_path: Path) -> None:
    material = prepare(tmp_path / "security")
    ca = x509.load_pem_x509_certificate(material.ca.read_bytes())
    chain = x509.load_pem_x509_certificates(material.broker_pem.read_bytes())
    broker = chain[0]
    broker.verify_directly_issued_by(ca)
    assert broker.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == BROKER_CN
    names = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert b"PRIVATE KEY" in material.broker_pem.read_bytes()
    for private in (material.broker_pem, *material.users.iterdir()):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(material.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(material.users.stat().st_mode) == 0o700
    assert load(material.directory) == material


def test_passwords_are_random_and_never_in_a_repr(tmp_path: Path) -> None:
    one, two = prepare(tmp_path / "a"), prepare(tmp_path / "b")
    assert set(one.passwords) == {ADMIN, *ROLES}
    assert len(set(one.passwords.values())) == len(one.passwords)
    assert not set(one.passwords.values()) & set(two.passwords.values())
    text = (repr(one) + repr(one.login(Settings(), "worker-primary"))
            + repr(one.login(Settings(), "client")))
    assert not [p for p in [*one.passwords.values(), *one.redis_passwords.values()] if p in text]
    assert one.passwords["admin"] not in str(one.public_env())


def test_broker_has_no_unauthenticated_listener(tmp_path: Path) -> None:
    material = prepare(tmp_path)
    config = broker_config(material, "127.0.0.1:1", "127.0.0.1:2")
    protocols = dict(kv.split(":") for kv in config["listener.security.protocol.map"].split(","))
    assert protocols == {"SASL_SSL": "SASL_SSL", "CONTROLLER": "SSL"}
    assert config["listener.name.controller.ssl.client.auth"] == "required"
    assert config["allow.everyone.if.no.acl.found"] == "false"
    argfile = format_argfile(material, tmp_path, ["kafka.tools.StorageTool", "format"])
    assert stat.S_IMODE(argfile.stat().st_mode) == 0o600
    assert material.passwords[ADMIN] in argfile.read_text()


def test_each_user_may_use_only_its_own_topics() -> None:
    grants = {(b.principal, b.restype, b.name, b.resource_pattern_type, b.operation)
              for b in acl_bindings("p.")}
    topic, literal = ResourceType.TOPIC, ResourcePatternType.LITERAL
    write, read = AclOperation.WRITE, AclOperation.READ
    assert ("User:worker-primary", topic, "p.scores", literal, write) in grants
    assert ("User:serve", topic, "p.scored", literal, write) in grants
    writers_of_scored = {g[0] for g in grants if g[2] == "p.scored" and g[4] == write}
    assert writers_of_scored == {"User:serve"}
    assert not [g for g in grants if g[0] == "User:decoy" and g[4] == write]
    assert all(g[2].startswith("p.") for g in grants)
    # Each model's workers join their own two groups, not another model's.
    assert ("User:worker-primary", ResourceType.GROUP, "p.worker-primary", literal,
            read) in grants
    assert ("User:worker-primary", ResourceType.GROUP, "p.worker-primary-shadow", literal,
            read) in grants
    assert not [g for g in grants if g[0] == "User:worker-primary" and "canary" in g[2]]
    # Issue 31, item 3: workers follow the registry on the control topic.
    for worker in ("User:worker-primary", "User:worker-canary"):
        assert (worker, topic, "p.control", literal, read) in grants
