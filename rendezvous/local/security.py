"""``rendezvous local up --secure``: authenticated Kafka and Redis on this machine.

For each run: a CA and a broker certificate (for 127.0.0.1/localhost), random
passwords for one SCRAM-SHA-512 user (principal) per component and per model worker,
a key per model that its workers sign their scores with and serve checks them by
(:mod:`rendezvous.signing`: the canary's worker cannot answer as the primary),
a SASL_SSL listener for clients, ACLs that let each principal read and write only what
it needs, and Redis ACL users limited to the return-address keys and channels.

What each principal may do is :data:`ROLES` (:func:`roles`): the Kafka ACLs, the Redis
users, the component -> principal mapping and docs/threat-model.md all come from it.

Everything lives in ``<state>/security`` (mode 0700): one credential file per principal
under ``users/`` (``users/<principal>.json``, mode 0600), so a component is given its own
file and nothing else; passwords are never printed nor put on a command line (the
storage format reads the admin's SCRAM credential from a Java argument file, deleted
right after; the Redis configuration holds password hashes only).

The controller listener speaks TLS with client certificates: only a process
holding a key signed by the run's CA (the broker itself) can talk to it.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rendezvous.local.errors import LocalStackError
from rendezvous.replyto import REPLY
from rendezvous.settings import Settings
from rendezvous.signing import new_key

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"
BROKER_CN = "rendezvous-broker"
DEFAULT_MODELS = ("primary", "canary")
"""Models whose workers get a principal even when the models directory lacks them (the
pipeline's two roles)."""
WORKER = "worker-"
"""A model worker's principal is ``worker-<model>``."""
USERS_DIR = "users"
CREDENTIALS_DIR_ENV = "RENDEZVOUS_CREDENTIALS_DIR"
"""Set in a supervisor's environment: a directory of ``<principal>.json`` files; each
component it starts gets its own principal's credentials and no other (see
:func:`component_environment`)."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$")


@dataclass(frozen=True)
class RedisAccess:
    """A principal's Redis ACL user: the commands it may run on the return addresses
    (keys ``<prefix>reply.*:<id>`` and channels ``<prefix>reply.*``), nothing else."""

    commands: tuple[str, ...]
    keys: str
    """``R`` (read only), ``W`` (write only), ``RW``."""
    kind: str | None = None
    """Only the return addresses of this kind (``<prefix>reply.<kind>.*``); None: all."""
    everything: bool = False
    """Every key, channel and command (the operator)."""


@dataclass(frozen=True)
class Role:
    """What one principal may do, by logical topic and group name (after the prefix)."""

    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    """Consumer groups it may join and commit to (literal names)."""
    group_prefixes: tuple[str, ...] = ()
    """Consumer-group name prefixes it may join and commit to."""
    transactional: tuple[str, ...] = ()
    """Transactional-id prefixes."""
    owns: tuple[str, ...] = ()
    """Topic-name prefixes the principal creates and uses freely (faust's changelogs)."""
    redis: RedisAccess | None = None
    """Its Redis user (None: it has no business with Redis and no Redis user)."""
    why: str = ""
    """What it is (for the threat model page)."""


REPLY_WRITER = RedisAccess(("set", "publish"), "W")
"""serve: keeps each result under ``<reply_to>:<id>`` (SET with a TTL) and notifies the
channel ``<reply_to>`` (PUBLISH); it can neither read a key nor subscribe."""
READS = ("get", "subscribe", "unsubscribe")


def reply_reader(kind: str) -> RedisAccess:
    """A caller of ``kind`` (the gateway, a client): waits on its channel, fetches a kept
    result (GET: the gateway's recovery after a reconnect too), only on return addresses
    of its own kind."""
    return RedisAccess(READS, "R", kind)


COMPONENT_ROLES: dict[str, Role] = {
    "serve": Role(reads=("input", "scores", "scored", "control"),
                  writes=("scored", "decisions", "deadletter"),
                  group_prefixes=("rendezvous",), transactional=("rendezvous",),
                  redis=REPLY_WRITER, why="the rendezvous: joins scores, writes results"),
    "gateway": Role(reads=("control",), writes=("input",), redis=reply_reader("gateway"),
                    why="HTTP in, requests to input, answers from its return address"),
    "decoy": Role(reads=("input", "decisions"), groups=("decoy",),
                  why="archives input and decisions to disk"),
    "monitor": Role(reads=("input", "decisions", "feedback", "control"), writes=("alerts",),
                    group_prefixes=("monitor",), owns=("monitor",),
                    why="drift, canary disagreement, feedback quality, versions; writes alerts"),
    "client": Role(reads=("scored", "control", "alerts"), writes=("input", "feedback"),
                   redis=reply_reader("client"),
                   why="an application: requests, labels, results by return address"),
}
"""Every component's principal except the model workers'; ``admin`` (the operator:
topics, policy, registry, replay, backtest) is a super user."""


def worker_principal(model: str) -> str:
    if not _NAME.match(model):
        raise LocalStackError(f"model name {model!r} cannot name a principal")
    return f"{WORKER}{model}"


def worker_role(model: str) -> Role:
    """Model ``model``'s workers (live and shadow): read requests and the registry, write
    scores; join only their own two groups."""
    return Role(reads=("input", "control"), writes=("scores",),
                groups=(f"worker-{model}", f"worker-{model}-shadow"),
                why=f"scores requests with model {model}, follows its registry entry")


def roles(models: Iterable[str] = DEFAULT_MODELS) -> dict[str, Role]:
    """The one table: every principal but ``admin`` -> what it may do, with a worker
    principal per model of ``models``."""
    table = dict(COMPONENT_ROLES)
    for model in sorted(set(models)):
        table[worker_principal(model)] = worker_role(model)
    return table


ROLES = roles()
"""The table for the pipeline's default models (primary, canary)."""


COMPONENTS = ("serve", "gateway", "decoy", "monitor")
"""The ``rendezvous`` subcommands run as the principal of the same name (``worker`` runs
as ``worker-<model>``; any other command is the operator's)."""


def principal_of(args: Sequence[str]) -> str | None:
    """The principal of the component ``rendezvous <args>`` starts, or None (a command
    that is not a pipeline component: it gets no credentials from a supervisor)."""
    if not args:
        return None
    if args[0] in COMPONENTS:
        return args[0]
    if args[0] == "worker":
        for i, arg in enumerate(args):
            if arg == "--model" and i + 1 < len(args):
                return worker_principal(args[i + 1])
            if arg.startswith("--model="):
                return worker_principal(arg.split("=", 1)[1])
    return None


def models_in(models_dir: Path | None) -> list[str]:
    """Model names under ``models_dir`` (a directory per model) and the default ones."""
    found = set(DEFAULT_MODELS)
    if models_dir is not None and Path(models_dir).is_dir():
        found |= {p.name for p in Path(models_dir).iterdir()
                  if p.is_dir() and _NAME.match(p.name) and not p.name.startswith(".")}
    return sorted(found)


REPLY_SPACE = REPLY
"""Return addresses are ``<topic prefix>reply.<kind>.<token>`` (:mod:`rendezvous.replyto`;
results kept under ``<address>:<id>``): the only keys and channels serve, the gateway and
clients may touch."""


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def reply_pattern(prefix: str, kind: str | None = None) -> str:
    """The Redis glob of every return-address key and channel under topic prefix ``prefix``
    (of ``kind`` only, if given): ``<prefix>reply.*`` (``<prefix>reply.<kind>.*``)."""
    return f"{_glob_escape(prefix + REPLY_SPACE + (f'{kind}.' if kind else ''))}*"


def redis_rule(access: RedisAccess, prefix: str) -> str:
    """The Redis ACL rule of ``access`` (after ``user <name> on <password>``)."""
    if access.everything:
        return "~* &* +@all"
    pattern = reply_pattern(prefix, access.kind)
    keys = f"%{access.keys}~{pattern}" if access.keys != "RW" else f"~{pattern}"
    commands = " ".join(f"+{c}" for c in ("ping", "hello", *access.commands))
    return f"resetkeys resetchannels {keys} &{pattern} -@all {commands}"


ADMIN_REDIS = RedisAccess((), "RW", everything=True)

SECRET_ENV = ("RENDEZVOUS_KAFKA__SASL_USERNAME", "RENDEZVOUS_KAFKA__SASL_PASSWORD",
              "RENDEZVOUS_REDIS__USERNAME", "RENDEZVOUS_REDIS__PASSWORD",
              "RENDEZVOUS_WORKER__SCORE_KEY", "RENDEZVOUS_SERVE__SCORE_KEYS",
              # the old names, still read, and a whole section given as JSON
              "RENDEZVOUS_SASL_USERNAME", "RENDEZVOUS_SASL_PASSWORD",
              "RENDEZVOUS_REDIS_USERNAME", "RENDEZVOUS_REDIS_PASSWORD",
              "RENDEZVOUS_KAFKA", "RENDEZVOUS_REDIS")
"""Credentials a supervisor never passes on: each component gets its own instead."""
OWN_SECRETS = {"RENDEZVOUS_GATEWAY__API_KEYS": "gateway",
               "RENDEZVOUS_DECOY__REDACTION_KEY": "decoy"}
"""Secrets in the operator's environment that only one component may see."""


@dataclass(frozen=True)
class Secure:
    """The run's security material: where its files are, the principals' passwords, the
    topic prefix the ACLs were granted for and the models that have a worker principal."""

    directory: Path
    passwords: Mapping[str, str] = field(repr=False)
    """Kafka password of every principal (admin too)."""
    redis_passwords: Mapping[str, str] = field(repr=False)
    """Redis password of every principal that has a Redis user."""
    prefix: str = "rendezvous."
    models: tuple[str, ...] = DEFAULT_MODELS

    @property
    def roles(self) -> dict[str, Role]:
        return roles(self.models)

    @property
    def principals(self) -> list[str]:
        return [ADMIN, *self.roles]

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def broker_pem(self) -> Path:
        return self.directory / "broker.pem"

    @property
    def users(self) -> Path:
        """The directory of the per-principal credential files."""
        return self.directory / USERS_DIR

    def credential_file(self, principal: str) -> Path:
        return self.users / f"{principal}.json"

    def login(self, settings: Settings, user: str) -> Settings:
        """``settings`` whose Kafka client is ``user``, and whose Redis client too (no Redis
        login for a user that has no business with Redis: the server's default user is
        off, so it is refused)."""
        from pydantic import SecretStr

        redis_password = self.redis_passwords.get(user)
        return settings.model_copy(update={
            "kafka": settings.kafka.model_copy(update={
                "security_protocol": "SASL_SSL", "sasl_mechanism": MECHANISM,
                "sasl_username": user, "sasl_password": SecretStr(self.passwords[user]),
                "ssl_ca_location": str(self.ca)}),
            "redis": settings.redis.model_copy(update={
                "username": user if redis_password is not None else None,
                "password": SecretStr(redis_password) if redis_password is not None else None}),
        })

    def env(self, user: str) -> dict[str, str]:
        """Environment of a child process that is ``user`` on Kafka (and Redis, if it has a
        Redis user)."""
        return {**self.public_env(), **credentials_env(self.users, user)}

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
        return {"RENDEZVOUS_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                "RENDEZVOUS_KAFKA__SASL_MECHANISM": MECHANISM,
                "RENDEZVOUS_KAFKA__SSL_CA_LOCATION": str(self.ca)}

    def component_env(self) -> dict[str, str]:
        """What a supervisor adds to its environment so that each component it starts
        runs as its own principal (:func:`component_environment`)."""
        return {**self.public_env(), CREDENTIALS_DIR_ENV: str(self.users)}

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


def _credential(principal: str, password: str, redis_password: str | None,
                score_keys: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {"principal": principal,
                             "kafka": {"username": principal, "password": password}}
    if redis_password is not None:
        found["redis"] = {"username": principal, "password": redis_password}
    # A model's key signs its scores: its workers hold it, serve holds every model's.
    if principal.startswith(WORKER):
        found["score_key"] = score_keys[principal.removeprefix(WORKER)]
    elif principal == "serve":
        found["score_keys"] = dict(score_keys)
    return found


def prepare(directory: Path, prefix: str = "rendezvous.",
            models: Iterable[str] = DEFAULT_MODELS) -> Secure:
    """New certificates and passwords for a run, written under ``directory``: one
    credential file per principal (``users/<principal>.json``, 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_pem, broker_pem = _certificates()
    (directory / "ca.pem").write_bytes(ca_pem)
    _private(directory / "broker.pem", broker_pem)
    table = roles(models)
    principals = [ADMIN, *table]
    passwords = {user: secrets.token_urlsafe(24) for user in principals}
    redis_passwords = {user: secrets.token_urlsafe(24) for user in principals
                       if user == ADMIN or table[user].redis is not None}
    score_keys = {model: new_key() for model in sorted(set(models))}
    users = directory / USERS_DIR
    users.mkdir(mode=0o700, exist_ok=True)
    users.chmod(0o700)
    for user in principals:
        body = _credential(user, passwords[user], redis_passwords.get(user), score_keys)
        _private(users / f"{user}.json", json.dumps(body, indent=2).encode())
    models = tuple(sorted(set(models)))
    _private(directory / "stack.json",
             json.dumps({"prefix": prefix, "models": list(models)}, indent=2).encode())
    return Secure(directory, passwords, redis_passwords, prefix, models)


def forget(directory: Path) -> None:
    """Delete a run's security material (its passwords are useless once it stopped)."""
    shutil.rmtree(directory, ignore_errors=True)


def load(directory: Path) -> Secure | None:
    """The material of a running secure stack, or None when it is not secure."""
    try:
        stack = json.loads((directory / "stack.json").read_text())
        passwords, redis_passwords = {}, {}
        for path in sorted((directory / USERS_DIR).glob("*.json")):
            found = json.loads(path.read_text())
            passwords[found["principal"]] = found["kafka"]["password"]
            if "redis" in found:
                redis_passwords[found["principal"]] = found["redis"]["password"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if ADMIN not in passwords:
        return None
    return Secure(directory, passwords, redis_passwords, stack["prefix"],
                  tuple(stack["models"]))


def credentials_env(users: Path, principal: str) -> dict[str, str]:
    """``RENDEZVOUS_KAFKA__SASL_*`` (and ``RENDEZVOUS_REDIS__*`` when it has a Redis user) of
    ``principal``, from its file in ``users``; a missing file is an error naming it."""
    path = Path(users) / f"{principal}.json"
    try:
        found = json.loads(path.read_text())
        env = {"RENDEZVOUS_KAFKA__SASL_USERNAME": found["kafka"]["username"],
               "RENDEZVOUS_KAFKA__SASL_PASSWORD": found["kafka"]["password"]}
        if "redis" in found:
            env.update({"RENDEZVOUS_REDIS__USERNAME": found["redis"]["username"],
                        "RENDEZVOUS_REDIS__PASSWORD": found["redis"]["password"]})
        if "score_key" in found:
            env["RENDEZVOUS_WORKER__SCORE_KEY"] = found["score_key"]
        if "score_keys" in found:
            env["RENDEZVOUS_SERVE__SCORE_KEYS"] = json.dumps(found["score_keys"])
    except FileNotFoundError:
        raise LocalStackError(
            f"no credentials for principal {principal!r} ({path} does not exist): a model "
            "that appeared after `rendezvous local up --secure` has no worker principal; "
            "restart the secure stack (`local down`, `local up --secure`)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LocalStackError(f"cannot read the credentials of {principal!r} from {path}: "
                              f"{type(exc).__name__}") from None
    return env


def component_environment(env: Mapping[str, str], args: Sequence[str]) -> dict[str, str]:
    """The environment of ``rendezvous <args>`` started by a supervisor whose environment
    is ``env``. When ``env`` names a credentials directory (:data:`CREDENTIALS_DIR_ENV`),
    the operator's own credentials (and secrets meant for another component) are left out
    and the component gets its own principal's; otherwise ``env`` as it is."""
    users = env.get(CREDENTIALS_DIR_ENV)
    if not users:
        return dict(env)
    principal = principal_of(args)
    kept = {}
    for name, value in env.items():
        upper = name.upper()
        if upper in SECRET_ENV or OWN_SECRETS.get(upper, principal) != principal:
            continue
        kept[name] = value
    if principal is not None:
        kept.update(credentials_env(Path(users), principal))
    return kept


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
    """SCRAM-SHA-512 credentials for every principal (the admin exists already)."""
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
        for user in secure.roles]
    for user, future in admin.alter_user_scram_credentials(upserts).items():
        try:
            future.result(timeout_s)
        except Exception as exc:
            raise LocalStackError(f"creating Kafka user {user!r} failed: {exc}") from None


def grant(secure: Secure, bootstrap: str, prefix: str | None = None,
          timeout_s: float = 30.0) -> int:
    """The ACLs of :func:`acl_bindings` for the stack's principals and topic prefix
    (idempotent); returns how many bindings were created."""
    from confluent_kafka.admin import AdminClient

    prefix = secure.prefix if prefix is None else prefix
    bindings = list(dict.fromkeys(acl_bindings(prefix, secure.roles)))
    admin = AdminClient({"bootstrap.servers": bootstrap, **secure.admin_config()})
    for binding, future in admin.create_acls(bindings).items():
        try:
            future.result(timeout_s)
        except Exception as exc:
            raise LocalStackError(f"creating ACL {binding} failed: {exc}") from None
    return len(bindings)


def acl_bindings(prefix: str, table: Mapping[str, Role] | None = None) -> Iterable[Any]:
    """One ALLOW binding per (principal, resource, operation) of ``table`` (default: the
    pipeline's :data:`ROLES`) for topic prefix ``prefix``. Nothing else is allowed: the
    broker runs with ``allow.everyone.if.no.acl.found=false``."""
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
    for user, role in (ROLES if table is None else table).items():
        # librdkafka looks up the coordinator of a consumer's group even when it only
        # reads assigned partitions (serve's recovery, the control topic's readers): that
        # takes DESCRIBE on the group, not the right to join it or commit.
        yield from allow(user, group, prefix, prefixed, describe)
        for name in role.reads:
            yield from allow(user, topic, prefix + name, literal, read, describe)
        for name in role.writes:
            yield from allow(user, topic, prefix + name, literal, write, describe)
        for name in role.groups:
            yield from allow(user, group, prefix + name, literal, read, describe)
        for name in role.group_prefixes:
            yield from allow(user, group, prefix + name, prefixed, read, describe)
        for name in role.transactional:
            yield from allow(user, ResourceType.TRANSACTIONAL_ID, prefix + name, prefixed,
                             write, describe)
        for name in role.owns:
            yield from allow(user, topic, prefix + name, prefixed, AclOperation.ALL)


def redis_users(secure: Secure) -> dict[str, str]:
    """Redis user -> its ACL rule (admin's: everything)."""
    found = {ADMIN: redis_rule(ADMIN_REDIS, secure.prefix)}
    for user, role in secure.roles.items():
        if role.redis is not None:
            found[user] = redis_rule(role.redis, secure.prefix)
    return found


def _redis_config(secure: Secure) -> str:
    """valkey/redis configuration lines: the default user off, one ACL user per principal
    that has a Redis user, identified by its password's SHA-256 (no password in the file)."""
    lines = ["user default off"]
    for user, rule in redis_users(secure).items():
        digest = hashlib.sha256(secure.redis_passwords[user].encode()).hexdigest()
        lines.append(f"user {user} on #{digest} {rule}")
    return "\n".join(lines) + "\n"


def markdown_table(prefix: str = "<prefix>", models: Iterable[str] = DEFAULT_MODELS) -> str:
    """:func:`roles` as the Markdown table of docs/threat-model.md (a unit test checks the
    page holds exactly this, so the page cannot drift from the ACLs granted)."""
    def names(items: Iterable[str]) -> str:
        return ", ".join(f"`{i}`" for i in items) or "-"

    rows = ["| principal | reads | writes | consumer groups | Redis |",
            "|---|---|---|---|---|",
            "| `admin` (the operator) | everything | everything | every group | every key, "
            "channel and command |"]
    for user, role in roles(models).items():
        groups = [*role.groups, *(f"{g}*" for g in role.group_prefixes)]
        writes = names([*role.writes, *(f"{o}*" for o in role.owns)])
        if role.owns:
            writes += " (own state topics: all operations)"
        if role.transactional:
            writes += f"; transactional ids {names(t + '*' for t in role.transactional)}"
        if role.redis is None:
            redis = "no user"
        else:
            verbs = " ".join(c.upper() for c in role.redis.commands)
            redis = f"{verbs} on `{reply_pattern(prefix, role.redis.kind)}`"
        rows.append(f"| `{user}` | {names(role.reads)} | {writes} | {names(groups)} "
                    f"| {redis} |")
    return "\n".join(rows) + "\n"
