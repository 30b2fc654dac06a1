"""``rendezvous local up --secure``: who is refused (no credentials, a wrong password, a CA
that did not sign the broker, a topic outside the user's ACL), each with one clear line
and no password in it. The slowest of the secure tests, so it runs with `make stress`; the
pipeline over SASL_SSL itself stays in tests/integration/test_secure.py (`make test`).

The secure stack is that module's fixture: a second broker, started once for this module.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from rendezvous.cli import main
from rendezvous.local.pipeline import component_env
from rendezvous.local.security import CREDENTIALS_DIR_ENV, prepare
from rendezvous.transport.clients import make_producer
from tests.integration.test_secure import SecureStack, as_user, secrets_of
from tests.integration.test_secure import secure as secure  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration


def test_refused_without_credentials_wrong_password_or_acl(secure: SecureStack,
                                                          tmp_path: Path) -> None:
    """Each refusal is one clear `Error:` line from the command a user runs."""
    admin, material = secure.admin, secure.material
    # Where the stack is, without its TLS settings and credentials directory (which
    # component_env adds for a secure stack): a client that knows nothing of security.
    base = {k: v for k, v in {**os.environ, **component_env(admin)}.items()
            if k not in {*material.public_env(), CREDENTIALS_DIR_ENV}}
    runner = CliRunner()
    outputs = []

    nobody = runner.invoke(main, ["topics", "list"], env=base)
    assert nobody.exit_code == 1
    assert "wants TLS and/or SASL" in nobody.output, nobody.output

    wrong = runner.invoke(main, ["topics", "list"], env={
        **base, **material.env("worker-primary"),
        "RENDEZVOUS_KAFKA__SASL_PASSWORD": "not-the-password"})
    assert wrong.exit_code == 1
    assert "refused the login of user 'worker-primary'" in wrong.output, wrong.output

    other_ca = prepare(tmp_path / "other").ca  # a CA that did not sign the broker
    bad_ca = runner.invoke(main, ["topics", "list"], env={
        **base, **material.env("worker-primary"),
        "RENDEZVOUS_KAFKA__SSL_CA_LOCATION": str(other_ca)})
    assert bad_ca.exit_code == 1
    assert "TLS handshake with Kafka failed" in bad_ca.output, bad_ca.output
    outputs += [nobody.output, wrong.output, bad_ca.output]

    # The worker's user may write scores, not results: the broker refuses the record.
    worker = as_user(admin, material, "worker-primary")
    errors: list[str] = []
    producer: Producer = make_producer(worker)
    producer.produce(worker.topic("scored"), b"{}", b"x",
                     on_delivery=lambda err, _msg: errors.append(str(err)))
    producer.flush(15)
    assert errors and "Topic authorization failed" in errors[0], errors
    producer.produce(worker.topic("scores"), b"{}", b"x",
                     on_delivery=lambda err, _msg: errors.append(str(err)))
    producer.flush(15)
    assert errors[1] == "None", errors  # its own topic: written
    for text in (*outputs, *errors):
        assert not [s for s in secrets_of(material) if s in text]
