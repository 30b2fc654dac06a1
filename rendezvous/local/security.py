"""``rendezvous local up --secure``: authenticated Kafka and Redis on this machine.

For each run: a CA and a broker certificate (for 127.0.0.1/localhost), random
passwords for one SCRAM-SHA-512 user per component, a SASL_SSL listener for
clients, ACLs that let each user read and write only its own topics and groups,
and Redis ACL users. Everything lives in ``<state>/security`` (mode 0700,
files 0600); passwords are read from there and never printed nor put on a
command line (the storage format reads the admin's SCRAM credential from a
Java argument file, deleted right after).

The controller listener speaks TLS with client certificates: only a process
holding a key signed by the run's CA (the broker itself) can talk to it.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rendezvous.local.errors import LocalStackError

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
BROKER_CN = "rendezvous-broker"


@dataclass(frozen=True)
class Role:
    """What one component's user may do, by logical topic and group name."""

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    """Consumer-group name prefixes (after the topic prefix)."""
    transactional: tuple[str, ...] = ()
    """Transactional-id prefixes (after the topic prefix)."""
    owns: tuple[str, ...] = ()
    """Topic-name prefixes the user creates and uses freely (faust's changelogs)."""


ROLES: dict[str, Role] = {
    "worker": Role(reads=("input",), writes=("scores",), groups=("worker-",)),
    "serve": Role(reads=("input", "scores", "scored", "control"),
                  writes=("scored", "decisions", "deadletter"),
                  groups=("rendezvous",), transactional=("rendezvous",)),
    "decoy": Role(reads=("input", "decisions"), groups=("decoy",)),
    "monitor": Role(reads=("input", "decisions", "feedback"), writes=("alerts",),
                    groups=("monitor",), owns=("monitor",)),
    "gateway": Role(reads=("control",), writes=("input",)),
    "client": Role(reads=("scored", "control", "alerts"), writes=("input", "feedback")),
}
"""Every component's user; ``admin`` (topics, policy, replay) is a super user."""

USERS = (ADMIN, *ROLES)

COMPONENT_USER = {"worker": "worker", "serve": "serve", "decoy": "decoy",
                  "monitor": "monitor", "gateway": "gateway"}
"""Which user a ``rendezvous`` subcommand runs as; any other command runs as ``admin``."""

REDIS_RULES = {
    ADMIN: "~* &* +@all",
    # serve writes each result under <reply_to>:<id> and notifies channel <reply_to>.
    "serve": "~* &* -@all +ping +hello +set +publish",
    # A caller (the gateway is one) waits on its own channel and reads its results.
    "gateway": "~* &* -@all +ping +hello +get +subscribe +unsubscribe",
    "client": "~* &* -@all +ping +hello +get +subscribe +unsubscribe",
}


@dataclass(frozen=True)
class Secure:
    """The run's security material: where its files are, and the users' passwords."""

    directory: Path
    passwords: Mapping[str, str] = field(repr=False)
    redis_passwords: Mapping[str, str] = field(repr=False)

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def broker_pem(self) -> Path:
        return self.directory / "broker.pem"

    @property
    def credentials(self) -> Path:
        return self.directory / "credentials.json"

    def kafka_settings(self, user: str) -> dict[str, Any]:
        """``Settings`` fields for a Kafka client that is ``user``."""
        from pydantic import SecretStr

        return {"security_protocol": "SASL_SSL", "sasl_mechanism": MECHANISM,
                "sasl_username": user, "sasl_password": SecretStr(self.passwords[user]),
                "ssl_ca_location": str(self.ca)}

    def redis_settings(self, user: str) -> dict[str, Any]:
        """``Settings`` fields for a Redis client that is ``user`` (none for a user that has
        no business with Redis: the server's default user is off, so it is refused)."""
        from pydantic import SecretStr

        if user not in self.redis_passwords:
            return {}
        return {"redis_username": user, "redis_password": SecretStr(self.redis_passwords[user])}

    def env(self, user: str) -> dict[str, str]:
        """Environment of a child process that is ``user`` on Kafka (and Redis, if it has a
        Redis user)."""
        env = {**self.public_env(), "RENDEZVOUS_SASL_USERNAME": user,
               "RENDEZVOUS_SASL_PASSWORD": self.passwords[user]}
        if user in self.redis_passwords:
            env.update({"RENDEZVOUS_REDIS_USERNAME": user,
                        "RENDEZVOUS_REDIS_PASSWORD": self.redis_passwords[user]})
        return env

    def write_redis_config(self) -> Path:
        """The Redis ACL configuration file (0600), given to the server as its config file."""
        path = self.directory / "redis-acl.conf"
        _private(path, _redis_config(self).encode())
        return path

    def redis_login(self, user: str) -> dict[str, str]:
        """``username``/``password`` keywords of a redis client that is ``user``."""
        return {"username": user, "password": self.redis_passwords[user]}

    def public_env(self) -> dict[str, str]:
        """The settings a client needs besides its user and password (nothing secret)."""
        return {"RENDEZVOUS_SECURITY_PROTOCOL": "SASL_SSL", "RENDEZVOUS_SASL_MECHANISM": MECHANISM,
                "RENDEZVOUS_SSL_CA_LOCATION": str(self.ca)}

    def admin_config(self) -> dict[str, Any]:
        """librdkafka settings (besides the bootstrap) of the admin user."""
        return {"security.protocol": "SASL_SSL", "sasl.mechanism": MECHANISM,
                "sasl.username": ADMIN, "sasl.password": self.passwords[ADMIN],
                "ssl.ca.location": str(self.ca)}


def _private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by this user only (never briefly by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def prepare(directory: Path) -> Secure:
    """New certificates and passwords for a run, written under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_pem, broker_pem = _certificates()
    (directory / "ca.pem").write_bytes(ca_pem)
    _private(directory / "broker.pem", broker_pem)
    passwords = {user: secrets.token_urlsafe(24) for user in USERS}
    redis_passwords = {user: secrets.token_urlsafe(24) for user in REDIS_RULES}
    _private(directory / "credentials.json",
             json.dumps({"kafka": passwords, "redis": redis_passwords}, indent=2).encode())
    return Secure(directory, passwords, redis_passwords)


def forget(directory: Path) -> None:
    """Delete a run's security material (its passwords are useless once it stopped)."""
    shutil.rmtree(directory, ignore_errors=True)


def load(directory: Path) -> Secure | None:
    """The material of a running secure stack, or None when it is not secure."""
    try:
        found = json.loads((directory / "credentials.json").read_text())
    except (OSError, ValueError):
        return None
    return Secure(directory, found["kafka"], found["redis"])


def _certificates() -> tuple[bytes, bytes]:
    """(CA certificate, broker key + certificate chain) in PEM; valid for 30 days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rendezvous local CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                  x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return ca_pem, key_pem + cert.public_bytes(pem) + ca_pem


def broker_config(secure: Secure, bootstrap: str, controller: str) -> dict[str, str]:
    """The broker's listeners, TLS, SASL and authorizer settings."""
    admin_jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
                  f'username="{ADMIN}" password="{secure.passwords[ADMIN]}";')
    return {
        "listeners": f"SASL_SSL://{bootstrap},CONTROLLER://{controller}",
        "advertised.listeners": f"SASL_SSL://{bootstrap}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": admin_jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(secure.broker_pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(secure.ca),
        "listener.name.controller.ssl.client.auth": "required",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{ADMIN};User:CN={BROKER_CN}",
        "allow.everyone.if.no.acl.found": "false",
    }


def format_argfile(secure: Secure, run_dir: Path, command: list[str]) -> Path:
    """A Java argument file (0600) holding ``command`` (the storage tool's main class and
    arguments) plus the admin's SCRAM credential, so the password is never on a command
    line; the caller deletes it."""
    argfile = run_dir / "format.args"
    value = f"{MECHANISM}=[name={ADMIN},password={secure.passwords[ADMIN]}]"
    lines = [*command, "--add-scram", value]
    _private(argfile, "".join(f'"{line}"\n' for line in lines).encode())
    return argfile


def create_users(secure: Secure, bootstrap: str, timeout_s: float = 30.0) -> None:
    """SCRAM-SHA-512 credentials for every component's user (the admin exists already)."""
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialAlteration,
        UserScramCredentialUpsertion,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap, **secure.admin_config()})
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(user, info, secure.passwords[user].encode())
        for user in ROLES]
    for user, future in admin.alter_user_scram_credentials(upserts).items():
        try:
            future.result(timeout_s)
        except Exception as exc:
            raise LocalStackError(f"creating Kafka user {user!r} failed: {exc}") from None


def grant(secure: Secure, bootstrap: str, prefix: str, timeout_s: float = 30.0) -> int:
    """ACLs letting each component's user use its own topics and groups of ``prefix``
    (idempotent); returns how many bindings were created."""
    from confluent_kafka.admin import AdminClient

    bindings = list(dict.fromkeys(acl_bindings(prefix)))  # DESCRIBE comes with read and write
    admin = AdminClient({"bootstrap.servers": bootstrap, **secure.admin_config()})
    for binding, future in admin.create_acls(bindings).items():
        try:
            future.result(timeout_s)
        except Exception as exc:
            raise LocalStackError(f"creating ACL {binding} failed: {exc}") from None
    return len(bindings)


def acl_bindings(prefix: str) -> Iterable[Any]:
    """One ALLOW binding per (user, resource, operation) for topic prefix ``prefix``."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    def allow(user: str, kind: ResourceType, name: str, pattern: ResourcePatternType,
              *operations: AclOperation) -> Iterable[AclBinding]:
        for op in operations:
            yield AclBinding(kind, name, pattern, f"User:{user}", "*", op,
                             AclPermissionType.ALLOW)

    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    topic, group = ResourceType.TOPIC, ResourceType.GROUP
    read, write, describe = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE
    for user, role in ROLES.items():
        # librdkafka looks up the coordinator of a consumer's group even when it only
        # reads assigned partitions (serve's recovery, the control topic's readers): that
        # takes DESCRIBE on the group, not the right to join it or commit.
        yield from allow(user, group, prefix, prefixed, describe)
        for name in role.reads:
            yield from allow(user, topic, prefix + name, literal, read, describe)
        for name in role.writes:
            yield from allow(user, topic, prefix + name, literal, write, describe)
        for name in role.groups:
            yield from allow(user, group, prefix + name, prefixed, read, describe)
        for name in role.transactional:
            yield from allow(user, ResourceType.TRANSACTIONAL_ID, prefix + name, prefixed,
                             write, describe)
        for name in role.owns:
            yield from allow(user, topic, prefix + name, prefixed, AclOperation.ALL)


def _redis_config(secure: Secure) -> str:
    """valkey/redis configuration lines: the default user off, one ACL user per rule."""
    lines = ["user default off"]
    for user, rule in REDIS_RULES.items():
        lines.append(f"user {user} on >{secure.redis_passwords[user]} {rule}")
    return "\n".join(lines) + "\n"
