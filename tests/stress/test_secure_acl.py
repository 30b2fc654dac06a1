"""Issue 31, items 3 and 6 against the real secure stack (`rendezvous local up --secure`):
the whole pipeline with one principal per component and per model, `model promote` and
`model rollback` under load taking effect (versions observed in `scored`); a worker that
may not join another model's group or read the registry stops at start, naming what it
lacks; and every (principal, topic / group / transactional id / Redis key or channel,
operation) pair tried for real, both what is allowed and what is refused, against the
one table in ``rendezvous.local.security``.

The secure stack is tests/integration/test_secure.py's fixture: a second broker, started
once for this module. The table-driven test writes probe records into the topics, so it
runs last.
"""

from __future__ import annotations

import collections
import fnmatch
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest
import redis
from confluent_kafka import (
    OFFSET_BEGINNING,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from rendezvous.client import Client
from rendezvous.demo.topic_records import TopicRecords
from rendezvous.demo.workload import OpenLoop
from rendezvous.local.pipeline import PipelineSpec, commands, component_env, start_pipeline
from rendezvous.local.security import (
    ADMIN,
    CREDENTIALS_DIR_ENV,
    grant,
    principal_of,
    reply_pattern,
)
from rendezvous.local.supervisor import Supervisor
from rendezvous.messages import Scored, decode_scored
from rendezvous.model import sample_events
from rendezvous.transport.clients import flush_or_raise, make_consumer, make_producer, make_reader
from rendezvous.transport.connect import redis_client
from rendezvous.transport.topics import load_specs
from tests.integration.test_secure import PREFIX, SecureStack, as_user, secrets_of
from tests.integration.test_secure import secure as secure  # noqa: F401  (the fixture)
from tests.model_versions import copy_version

pytestmark = pytest.mark.integration

RATE = 100.0
PHASE_S = 5.0
WARM_UP_S = 3.0
DEADLINE_MS = 1000.0


def wait_for_log(log: Path, text: str, timeout_s: float = 60.0) -> None:
    give_up = time.monotonic() + timeout_s
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < give_up, \
            f"{log.name} never logged {text!r}:\n{log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.1)


def operator_env(stack: SecureStack, models: Path | None = None) -> dict[str, str]:
    """The operator's shell: admin's credentials exported (the quick setup)."""
    env = {**os.environ, **component_env(stack.admin), **stack.material.env(ADMIN)}
    if models is not None:
        env["RENDEZVOUS_MODELS_DIR"] = str(models)
    return env


def rendezvous(env: dict[str, str], *args: str, timeout_s: float = 120.0
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rendezvous", *args], env=env,
                          capture_output=True, text=True, timeout=timeout_s, check=False)


@pytest.mark.timeout(600)
def test_promote_and_rollback_under_load_each_component_its_own_principal(
        secure: SecureStack, tmp_path: Path) -> None:
    admin, material = secure.admin, secure.material
    models = tmp_path / "models"
    for name in ("primary", "canary"):
        shutil.copytree(admin.models_dir / name / "1", models / name / "1")
    operator = operator_env(secure, models)
    # `rendezvous up`'s path: a supervisor with the operator's environment (admin's
    # credentials in it) and the stack's credentials directory.
    supervisor = Supervisor(tmp_path / "logs", operator)
    spec = PipelineSpec(archive=tmp_path / "archive", monitor=True, decoy=True)
    client = as_user(admin.model_copy(update={"models_dir": models}), material, "client")
    try:
        start_pipeline(supervisor, spec, timeout_s=180)
        for name, args in commands(spec).items():
            env = supervisor.components[name].env
            assert env["RENDEZVOUS_KAFKA__SASL_USERNAME"] == principal_of(args), name
            assert material.passwords[ADMIN] not in env.values(), name
            assert material.redis_passwords[ADMIN] not in env.values(), name

        rows = [e["features"] for e in sample_events(500, seed=31)]
        # Warm: until the primary answers in time (a fresh pipeline on a busy machine
        # answers its first requests late), through the client's Redis return address.
        with Client(client) as caller:
            give_up = time.monotonic() + 120
            while caller.score(rows[0], deadline_ms=DEADLINE_MS, timeout_s=10).model \
                    != "primary":
                assert time.monotonic() < give_up, "the primary never answered in time"
        producer = make_producer(client)  # an application sends the requests
        loop = OpenLoop(producer, client.topic("input"), RATE,
                        lambda i, ts: (f"s-{i}".encode(), msgspec.json.encode(
                            {"id": f"s-{i}", "features": rows[i % len(rows)], "ts": ts,
                             "deadline_ms": DEADLINE_MS})), partitions=4)
        stop = threading.Event()
        sender = loop.start(stop)
        marks: dict[str, int] = {}
        primary_log = supervisor.components["primary"].log
        try:
            time.sleep(WARM_UP_S)
            marks["steady"] = loop.sent
            time.sleep(PHASE_S)
            copy_version(models / "primary" / "1", models, "2")
            marks["promote"] = loop.sent
            promoted = rendezvous(operator, "model", "promote", "primary", "2", "--force",
                                  "--actor", "ci")
            assert promoted.returncode == 0, promoted.stderr
            wait_for_log(primary_log, "swapped versions 1 -> 2")
            marks["promoted"] = loop.sent
            time.sleep(PHASE_S)
            marks["rollback"] = loop.sent
            rolled = rendezvous(operator, "model", "rollback", "primary", "--actor", "ci")
            assert rolled.returncode == 0, rolled.stderr
            wait_for_log(primary_log, "swapped versions 2 -> 1")
            marks["rolled back"] = loop.sent
            time.sleep(PHASE_S)
        finally:
            stop.set()
            sender.join()
        n = loop.sent
        flush_or_raise(producer)
        assert not loop.failed

        ids = [f"s-{i}" for i in range(n)]
        wanted = set(ids)
        by_id: dict[str, Scored] = {}
        scored = TopicRecords(client, "scored")  # read by the application's principal

        read = [0]

        def complete(records: list[Message]) -> bool:
            for record in records[read[0]:]:
                result = decode_scored(record.value())
                by_id.setdefault(result.id, result)
            read[0] = len(records)
            return wanted <= by_id.keys()

        scored.read_until(complete, timeout_s=120)
        scored.close()
        assert wanted <= by_id.keys(), f"{len(wanted - by_id.keys())} requests unanswered"
        phases = [("steady", marks["steady"], marks["promote"], "1"),
                  ("promoted", marks["promoted"], marks["rollback"], "2"),
                  ("rolled back", marks["rolled back"], n, "1")]
        for phase, first, end, version in phases:
            answered = [by_id[rid] for rid in ids[first:end]]
            versions = collections.Counter(r.version for r in answered if r.model == "primary")
            statuses = collections.Counter(r.status for r in answered)
            print(f"{phase}: {len(answered)} requests {dict(statuses)}, primary versions "
                  f"{dict(versions)}")
            assert set(versions) == {version}, (phase, versions, statuses)
    finally:
        supervisor.stop_all()
    for log in supervisor.log_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        assert not [s for s in secrets_of(material) if s in text], log.name
        assert "AUTHORIZATION_FAILED" not in text, f"{log.name}: {text[-2000:]}"


def test_a_worker_may_not_join_another_models_group(secure: SecureStack) -> None:
    """worker-primary's credentials cannot consume as canary's worker (it would take
    canary's partitions): refused at start, naming the principal and the group."""
    env = {k: v for k, v in operator_env(secure).items() if k != CREDENTIALS_DIR_ENV}
    env.update(secure.material.env("worker-primary"))
    done = rendezvous(env, "worker", "--model", "canary", timeout_s=90)
    assert done.returncode == 1, done.stderr[-3000:]
    assert (f"User:worker-primary was refused consumer group {PREFIX}worker-canary"
            in done.stderr), done.stderr[-3000:]


def test_a_worker_that_may_not_read_the_registry_stops_at_start(
        secure: SecureStack, tmp_path: Path) -> None:
    """The failure of item 3 itself (the worker's READ on control missing): the worker no
    longer serves the newest version on disk in silence; it stops, naming the topic."""
    admin, material = secure.admin, secure.material
    bootstrap = admin.kafka_bootstrap()
    client = AdminClient({"bootstrap.servers": bootstrap, **material.admin_config()})
    control = AclBindingFilter(ResourceType.TOPIC, admin.topic("control"),
                               ResourcePatternType.LITERAL, "User:worker-canary", "*",
                               AclOperation.READ, AclPermissionType.ALLOW)
    for future in client.delete_acls([control]).values():
        assert future.result(30), "no ACL deleted"
    try:
        supervisor = Supervisor(tmp_path / "logs", operator_env(secure))
        component = supervisor.start("canary", ["worker", "--model", "canary"], wait=False)
        give_up = time.monotonic() + 90
        from rendezvous.local.processes import alive

        while alive(component.pid):
            assert time.monotonic() < give_up, component.log.read_text()[-3000:]
            time.sleep(0.2)
        text = component.log.read_text(errors="replace")
        assert (f"User:worker-canary may not READ topic {PREFIX}control, which the live "
                "worker of canary (to follow the model registry) needs") in text, text[-3000:]
        assert "rendezvous-ready" not in text
    finally:
        grant(material, bootstrap)


# --- the table, tried for real ------------------------------------------------------


def expected_topic(stack: SecureStack, principal: str, topic: str, operation: str) -> bool:
    if principal == ADMIN:
        return True
    role = stack.material.roles[principal]
    names = role.reads if operation == "READ" else role.writes
    return topic in names or any(topic.startswith(o) for o in role.owns)


def expected_group(stack: SecureStack, principal: str, group: str) -> bool:
    if principal == ADMIN:
        return True
    role = stack.material.roles[principal]
    return group in role.groups or any(group.startswith(p) for p in role.group_prefixes)


def expected_redis(stack: SecureStack, principal: str, command: str, name: str) -> bool:
    if principal == ADMIN:
        return True
    access = stack.material.roles[principal].redis
    if access is None or command not in access.commands:
        return False
    if not fnmatch.fnmatchcase(name.split(":")[0], reply_pattern(PREFIX, access.kind)):
        return False
    if command in ("get", "mget"):
        return "R" in access.keys
    return command != "set" or "W" in access.keys


def try_writes(stack: SecureStack, principal: str, topics: list[str]) -> dict[str, bool]:
    settings = as_user(stack.admin, stack.material, principal)
    # Not idempotent: an idempotent producer needs a producer id first, which a principal
    # that may write nothing never gets (every write would fail alike).
    producer: Producer = make_producer(settings, **{"enable.idempotence": False,
                                                    "message.timeout.ms": 20000})
    outcome: dict[str, bool] = {}
    for topic in topics:
        def delivered(error: KafkaError | None, _record: object, topic: str = topic) -> None:
            if error is not None and error.code() not in (
                    KafkaError.TOPIC_AUTHORIZATION_FAILED,):
                raise AssertionError(f"{principal} writing {topic}: {error}")
            outcome[topic] = error is None

        value = None if topic == "control" else b"acl-probe"  # a tombstone: read by no one
        producer.produce(settings.topic(topic), value, b"acl-probe", partition=0,
                         on_delivery=delivered)
    producer.flush(30)
    return outcome


def try_reads(stack: SecureStack, principal: str, topics: list[str]) -> dict[str, bool]:
    settings = as_user(stack.admin, stack.material, principal)
    outcome: dict[str, bool] = {}
    for topic in topics:
        consumer = make_reader(settings, "acl-probe")
        # Without DESCRIBE the broker hides the topic's metadata and librdkafka never
        # fetches (a refusal); with DESCRIBE but no READ, the fetch itself is refused.
        hidden = consumer.list_topics(settings.topic(topic), timeout=10).topics[
            settings.topic(topic)].error
        if hidden is not None:
            assert hidden.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, hidden
            outcome[topic] = False
        else:
            consumer.assign([TopicPartition(settings.topic(topic), 0, OFFSET_BEGINNING)])
        give_up = time.monotonic() + 20
        try:
            while topic not in outcome:
                assert time.monotonic() < give_up, f"{principal} reading {topic}: no answer"
                record = consumer.poll(0.5)
                if record is None:
                    continue
                error = record.error()
                if error is None or error.code() == KafkaError._PARTITION_EOF:
                    outcome[topic] = True
                elif error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                    outcome[topic] = False
        finally:
            consumer.close()
    return outcome


def try_group(stack: SecureStack, principal: str, group: str) -> bool:
    """Commit an offset into ``group`` (what joining it and consuming lead to)."""
    settings = as_user(stack.admin, stack.material, principal)
    reads = ("control",) if principal == ADMIN else stack.material.roles[principal].reads
    topic = "control" if "control" in reads else reads[-1]
    consumer = make_consumer(settings, settings.group(group))
    try:
        consumer.commit(offsets=[TopicPartition(settings.topic(topic), 0, 0)],
                        asynchronous=False)
        return True
    except KafkaException as exc:
        # Another error is past the authorization (e.g. a group that has members).
        return bool(exc.args[0].code() != KafkaError.GROUP_AUTHORIZATION_FAILED)
    finally:
        consumer.close()


def try_transactional(stack: SecureStack, principal: str) -> bool:
    settings = as_user(stack.admin, stack.material, principal)
    producer = make_producer(settings, **{"transactional.id": settings.group("rendezvous-acl")})
    try:
        producer.init_transactions(30)
        return True
    except KafkaException as exc:
        code = exc.args[0].code()
        if code in (KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                    KafkaError.CLUSTER_AUTHORIZATION_FAILED):
            return False
        raise


def try_redis(stack: SecureStack, principal: str, command: str, name: str) -> bool | None:
    """Whether ``principal`` may run ``command`` on key/channel ``name``; None: it has no
    Redis user (its login is refused)."""
    material = stack.material
    password = material.redis_passwords.get(principal, material.passwords[principal])
    client = redis.Redis.from_url(stack.admin.redis_url(), username=principal, password=password,
                                  socket_timeout=5)
    try:
        client.ping()
    except redis.AuthenticationError:
        return None
    try:
        if command == "set":
            client.set(name, b"probe", ex=5)
        elif command == "get":
            client.get(name)
        elif command == "mget":
            client.mget([name])
        elif command == "publish":
            client.publish(name, b"probe")
        elif command == "subscribe":
            pubsub = client.pubsub()
            pubsub.subscribe(name)
            message = pubsub.get_message(timeout=5)
            pubsub.close()
            return message is not None and message["type"] == "subscribe"
        elif command == "keys":
            client.keys("*")
        elif command == "config":
            client.config_get("maxmemory")
        return True
    except redis.exceptions.NoPermissionError:
        return False
    except redis.ResponseError as exc:
        if "NOPERM" in str(exc) or "permission" in str(exc).lower():
            return False
        raise
    finally:
        client.close()


def test_every_principal_topic_group_and_key_allowed_and_refused(secure: SecureStack) -> None:
    material = secure.material
    topics = sorted(load_specs(secure.admin))
    groups = sorted({g for role in material.roles.values() for g in role.groups}
                    | {"rendezvous", "monitor", "monitor-bulk", "decoy"})
    gateway = f"{PREFIX}reply.gateway.{'a' * 32}"
    client = f"{PREFIX}reply.client.{'b' * 32}"
    redis_cases = [("set", f"{gateway}:r1"), ("set", f"{client}:r1"), ("set", "victim:r1"),
                   ("get", f"{gateway}:r1"), ("get", f"{client}:r1"), ("get", "victim:r1"),
                   ("mget", f"{gateway}:r1"), ("mget", "victim:r1"),
                   ("publish", gateway), ("publish", "victim"),
                   ("subscribe", gateway), ("subscribe", client), ("subscribe", "victim"),
                   ("keys", "*"), ("config", "*")]
    wrong: list[str] = []
    checked = collections.Counter[str]()
    for principal in material.principals:
        for operation, found in (("WRITE", try_writes(secure, principal, topics)),
                                 ("READ", try_reads(secure, principal, topics))):
            for topic in topics:
                want = expected_topic(secure, principal, topic, operation)
                checked["allowed" if want else "refused"] += 1
                if found.get(topic) != want:
                    wrong.append(f"{principal} {operation} {topic}: {found.get(topic)}, "
                                 f"table says {want}")
        for group in groups:
            want = expected_group(secure, principal, group)
            checked["allowed" if want else "refused"] += 1
            if try_group(secure, principal, group) != want:
                wrong.append(f"{principal} group {group}: table says {want}")
        want = principal in (ADMIN, "serve")
        checked["allowed" if want else "refused"] += 1
        if try_transactional(secure, principal) != want:
            wrong.append(f"{principal} transactional id: table says {want}")
        has_user = principal == ADMIN or material.roles[principal].redis is not None
        for command, name in redis_cases:
            found_redis = try_redis(secure, principal, command, name)
            if not has_user:
                checked["refused"] += 1
                if found_redis is not None:
                    wrong.append(f"{principal} has a Redis login, table says none")
                break
            want = expected_redis(secure, principal, command, name)
            checked["allowed" if want else "refused"] += 1
            if found_redis != want:
                wrong.append(f"{principal} Redis {command} {name}: {found_redis}, "
                             f"table says {want}")
    print(f"checked {dict(checked)}")
    assert not wrong, "\n".join(wrong)
    assert checked["allowed"] > 50 and checked["refused"] > 100
    # The local Redis is bounded, evicting reply keys nearest their expiry first.
    admin_redis = redis_client(secure.admin)
    assert admin_redis.config_get("maxmemory-policy") == {"maxmemory-policy": "volatile-ttl"}
    assert int(admin_redis.config_get("maxmemory")["maxmemory"]) == 256 * 1024 * 1024
