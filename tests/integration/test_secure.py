"""``rendezvous local up --secure`` for real: the whole pipeline over SASL_SSL with one
SCRAM user per component and ACLs, Redis with ACL users; who is refused, and that no
password leaks into a log, ``--help``, ``status`` or an exception. The refusals (no
credentials, a wrong password, a foreign CA, a missing ACL) are a stress drill:
tests/stress/test_secure.py.

The secure broker is a second broker (a small heap), started once for this module.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from pydantic import SecretStr

from rendezvous.cli import main
from rendezvous.client import Client
from rendezvous.local.pipeline import PipelineSpec, commands, component_env, gateway_address
from rendezvous.local.processes import alive
from rendezvous.local.security import Secure, load, principal_of
from rendezvous.local.stack import read as read_local
from rendezvous.local.supervisor import Supervisor
from rendezvous.model import sample_events
from rendezvous.settings import Settings
from rendezvous.transport.connect import redis_client
from rendezvous.transport.topics import apply_topics
from tests.model_versions import copy_version

pytestmark = pytest.mark.integration

PREFIX = f"sec{uuid.uuid4().hex[:8]}."


@dataclass(frozen=True)
class SecureStack:
    admin: Settings
    """Settings of the admin user on the secure stack, with this module's topics."""
    material: Secure
    up_output: str
    """What `rendezvous local up --secure` printed."""


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureStack]:
    """A secure local stack started by `rendezvous local up --secure` (topics created),
    stopped by `rendezvous local down`."""
    state = tmp_path_factory.mktemp("secure-stack")
    env = {**os.environ, "RENDEZVOUS_STATE_DIR": str(state), "RENDEZVOUS_LOCAL__KAFKA_HEAP": "256m",
           "RENDEZVOUS_TOPIC_PREFIX": PREFIX}
    base = Settings(state_dir=state, topic_prefix=PREFIX)
    runner = CliRunner()
    started = runner.invoke(main, ["local", "up", "--secure"], env=env)
    try:
        assert started.exit_code == 0, started.output
        endpoints = read_local(base)
        material = load(state / "security")
        assert endpoints is not None and material is not None
        assert not (state / "format.args").exists()  # the admin's password, used and gone
        admin = material.login(base.with_endpoints(endpoints.bootstrap_servers,
                                                   endpoints.redis_url), "admin")
        apply_topics(admin)
        yield SecureStack(admin, material, started.output)
    finally:
        pids = read_local(base)
        stopped = runner.invoke(main, ["local", "down"], env=env)
        assert stopped.exit_code == 0, stopped.output
        assert pids is None or not (alive(pids.kafka_pid) or alive(pids.redis_pid))
        assert not (state / "security").exists()


def as_user(settings: Settings, material: Secure, user: str) -> Settings:
    return material.login(settings, user)


def secrets_of(material: Secure) -> list[str]:
    return [*material.passwords.values(), *material.redis_passwords.values()]


def test_pipeline_over_sasl_ssl(secure: SecureStack, tmp_path: Path) -> None:
    """Workers, serve, decoy, monitor and gateway each as its own user (the supervisor
    picks it, though the operator's environment is admin's); a client gets its answers
    through its Redis return address, the gateway too; no password is in any log."""
    admin, material = secure.admin, secure.material
    spec = PipelineSpec(archive=tmp_path / "archive", monitor=True, gateway=True)
    supervisor = Supervisor(tmp_path / "logs", {**component_env(admin), **material.env("admin")})
    events = sample_events(21, seed=17)
    try:
        for name, args in commands(spec).items():
            component = supervisor.start(name, args, timeout_s=120)
            assert component.env["RENDEZVOUS_KAFKA__SASL_USERNAME"] == principal_of(args)
        with Client(as_user(admin, material, "client")) as client:
            results = [client.score(event["features"], deadline_ms=2000, timeout_s=10)
                       for event in events[:20]]
        assert {r.status for r in results} <= {"ok", "fallback"}, results
        assert all(r.score is not None for r in results)
        # The gateway, as its own user, answers over HTTP through its return address.
        body = json.dumps({"inputs": [{"name": name, "datatype": "FP32", "shape": [1],
                                       "data": [value]}
                                      for name, value in events[20]["features"].items()]})
        url = f"http://{gateway_address(supervisor.components['gateway'])}"
        request = urllib.request.Request(f"{url}/v2/models/rendezvous/infer", body.encode(),
                                         {"X-Deadline-Ms": "2000",
                                          "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        statuses = next(o["data"] for o in answer["outputs"] if o["name"] == "status")
        assert statuses in (["ok"], ["fallback"]), answer
    finally:
        supervisor.stop_all()
    logs = [*supervisor.log_dir.glob("*.log"), *admin.state_dir.glob("*.log")]
    assert logs
    for log in logs:
        text = log.read_text(errors="replace")
        leaked = [s for s in secrets_of(material) if s in text]
        assert not leaked, f"a password is in {log.name}"
        if log.parent == supervisor.log_dir:  # the ACLs grant what each component needs
            assert "AUTHORIZATION_FAILED" not in text, f"{log.name}: {text[-2000:]}"


def test_redis_return_address_needs_credentials(secure: SecureStack) -> None:
    admin, material = secure.admin, secure.material
    client = as_user(admin, material, "client")
    nobody = client.model_copy(update={"redis": client.redis.model_copy(
        update={"username": None, "password": None})})
    with pytest.raises(redis.AuthenticationError):
        redis_client(nobody).ping()
    wrong = client.model_copy(update={"redis": client.redis.model_copy(
        update={"password": SecretStr("not-the-password")})})
    with pytest.raises(redis.AuthenticationError) as bad:
        redis_client(wrong).ping()
    assert not [s for s in secrets_of(material) if s in str(bad.value)]
    # A caller may wait for its results but not publish someone else's.
    with pytest.raises(redis.ResponseError, match="(?i)permission"):
        redis_client(client).publish(f"{PREFIX}reply.x", b"forged")
    assert redis_client(client).ping()


def test_status_and_help_print_no_secret(secure: SecureStack) -> None:
    admin, material = secure.admin, secure.material
    env = {**os.environ, "RENDEZVOUS_STATE_DIR": str(admin.state_dir),
           **material.env("serve")}
    runner = CliRunner()
    status = runner.invoke(main, ["local", "status"], env=env)
    assert status.exit_code == 0, status.output
    assert "SASL_SSL" in status.output and "running" in status.output
    plain = runner.invoke(main, ["local", "up"], env=env)  # not over a secure one
    assert plain.exit_code == 1 and "secure local stack is running" in plain.output
    again = runner.invoke(main, ["local", "up", "--secure"], env=env)
    assert again.exit_code == 0 and admin.kafka_bootstrap() in again.output
    outputs = [plain.output, again.output]
    assert "RENDEZVOUS_KAFKA__SECURITY_PROTOCOL=SASL_SSL" in secure.up_output
    assert str(material.users) in secure.up_output  # one credential file per principal
    outputs += [secure.up_output, status.output]
    for command in (["--help"], ["local", "up", "--help"], ["serve", "--help"],
                    ["worker", "--help"]):
        result = runner.invoke(main, command, env=env)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    for text in outputs:
        assert not [s for s in secrets_of(material) if s in text]
    assert material.passwords["serve"] not in repr(as_user(admin, material, "serve"))
    assert material.passwords["admin"] not in repr(material)
    # The broker's configuration holds the admin's password: readable by this user only.
    assert stat.S_IMODE((admin.state_dir / "server.properties").stat().st_mode) == 0o600


def test_policy_changes_name_who_and_when(secure: SecureStack) -> None:
    admin, material = secure.admin, secure.material
    base = {**os.environ, **component_env(admin)}
    runner = CliRunner()
    first = runner.invoke(main, ["policy", "set", "--prefer", "canary,primary",
                                 "--deadline-ms", "40", "--actor", "ana"],
                          env={**base, **material.env("admin")})
    assert first.exit_code == 0, first.output
    second = runner.invoke(main, ["policy", "set", "--prefer", "primary,canary"],
                           env={**base, **material.env("admin")})
    assert second.exit_code == 0, second.output
    refused = runner.invoke(main, ["policy", "set", "--prefer", "canary"],
                            env={**base, **material.env("worker-primary")})
    assert refused.exit_code == 1 and "authoriz" in refused.output.lower(), refused.output
    history = runner.invoke(main, ["policy", "history"], env={**base, **material.env("client")})
    assert history.exit_code == 0, history.output
    lines = [line for line in history.output.splitlines() if not line.startswith("#")]
    assert len(lines) == 2, history.output
    assert "ana" in lines[0] and "User:admin" in lines[0] and '"canary","primary"' in lines[0]
    assert "User:admin" in lines[1] and '"primary","canary"' in lines[1]


def _wait_for_log(component_log: Path, text: str, timeout_s: float = 60.0) -> None:
    give_up = time.monotonic() + timeout_s
    while text not in component_log.read_text(errors="replace"):
        assert time.monotonic() < give_up, f"never logged {text!r}:\n" \
            f"{component_log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.1)


def test_a_worker_follows_promote_and_rollback_as_its_own_principal(
        secure: SecureStack, tmp_path: Path) -> None:
    """Issue 31, item 3: on the secure stack a worker (``worker-primary``) reads the
    registry, so `model promote` and `model rollback` by the operator take effect. Promote
    and rollback under load, versions observed in `scored`: tests/stress/test_secure_acl.py."""
    admin, material = secure.admin, secure.material
    models = tmp_path / "models"
    shutil.copytree(admin.models_dir / "primary" / "1", models / "primary" / "1")
    env = {**component_env(admin), "RENDEZVOUS_MODELS_DIR": str(models)}
    supervisor = Supervisor(tmp_path / "logs", {**env, **material.env("admin")})
    operator = {**os.environ, **env, **material.env("admin")}

    def model(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "rendezvous", "model", *args,
                               "--actor", "ci"], env=operator, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr

    try:
        worker = supervisor.start("primary", ["worker", "--model", "primary"], timeout_s=120)
        assert worker.env["RENDEZVOUS_KAFKA__SASL_USERNAME"] == "worker-primary"
        copy_version(models / "primary" / "1", models, "2")  # a new version appears
        model("promote", "primary", "2", "--force")
        _wait_for_log(worker.log, "swapped versions 1 -> 2")
        model("rollback", "primary")
        _wait_for_log(worker.log, "swapped versions 2 -> 1")
    finally:
        supervisor.stop_all()
    assert "AUTHORIZATION_FAILED" not in worker.log.read_text(errors="replace")


def test_a_topic_the_principal_may_not_use_is_fatal_at_start(secure: SecureStack) -> None:
    """A worker started with credentials that may not read its topics stops at once, naming
    the principal and the topic, instead of waiting for records that never come."""
    admin, material = secure.admin, secure.material
    env = {**os.environ, **component_env(admin), **material.env("gateway")}
    env.pop("RENDEZVOUS_CREDENTIALS_DIR")  # run by hand, not by a supervisor
    done = subprocess.run([sys.executable, "-m", "rendezvous", "worker", "--model", "primary"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"User:gateway may not READ topic {PREFIX}input" in done.stderr, done.stderr[-2000:]
    assert not [s for s in secrets_of(material) if s in done.stderr + done.stdout]
