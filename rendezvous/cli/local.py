"""``rendezvous local up | down | status``."""

from __future__ import annotations

import click

from rendezvous import local as stack
from rendezvous.cli.common import clear_errors, default, settings
from rendezvous.local.endpoints import endpoints_file
from rendezvous.local.kafka import ensure_jars, kafka_version
from rendezvous.local.security import load
from rendezvous.settings import LocalSettings


@click.group("local")
def local() -> None:
    """The embedded default: a real Kafka broker and Redis on this machine."""


@local.command()
@click.option("--brokers", type=click.IntRange(1, 9), default=None,
              help="Kafka brokers: 1, or a replicated KRaft cluster (3: replication factor 3, "
                   "min.insync.replicas 2)" + default(LocalSettings, "brokers"))
@click.option("--secure", is_flag=True,
              help="Authenticated Kafka and Redis: a SASL_SSL listener (SCRAM-SHA-512, a CA "
                   "and certificate made for the run), one principal per component and per "
                   "model worker with ACLs on what it needs (docs/threat-model.md), Redis "
                   "ACL users limited to return addresses. Each principal's password goes to "
                   "a file of its own, <state>/security/users/<principal>.json (mode 0600), "
                   "never to the screen; `rendezvous up` starts each component as its own "
                   "principal. One broker only.")
def up(brokers: int | None, secure: bool) -> None:
    """Start Kafka (KRaft, from Maven Central jars) and Redis on 127.0.0.1."""
    s = settings(local_endpoints=False, local={"brokers": brokers})
    with clear_errors():
        count = s.local.brokers
        click.echo(f"starting Kafka ({count} broker{'s' if count > 1 else ''})"
                   " and Redis (the first run fetches the Kafka jars)...", err=True)
        endpoints = stack.up(s, secure=secure)
    click.echo(f"KAFKA_BOOTSTRAP_SERVERS={endpoints.bootstrap_servers}")
    click.echo(f"REDIS_URL={endpoints.redis_url}")
    material = load(s.state_dir / "security")
    if material is not None:
        for name, value in material.public_env().items():
            click.echo(f"{name}={value}")
        click.echo(f"# one credential file per principal in {material.users} (the operator "
                   f"is {material.credential_file('admin').name}; set "
                   "RENDEZVOUS_KAFKA__SASL_USERNAME/_SASL_PASSWORD, "
                   "RENDEZVOUS_REDIS__USERNAME/_PASSWORD from it); "
                   "`rendezvous up` starts each component as its own principal", err=True)
    click.echo(f"# written to {endpoints_file(s.state_dir)}; stop with `rendezvous local down`",
               err=True)


@local.command()
def fetch() -> None:
    """Fetch the Kafka jars from Maven Central into the cache (done by `up` when needed)."""
    s = settings(local_endpoints=False)
    with clear_errors():
        libs = ensure_jars(s.cache_dir)
    click.echo(f"Kafka {kafka_version()} jars in {libs}")


@local.command()
def down() -> None:
    """Stop the local Kafka and Redis; no process is left behind."""
    with clear_errors():
        stopped = stack.down(settings(local_endpoints=False))
    click.echo(f"stopped pids {stopped}" if stopped else "nothing was running")


@local.command()
def status() -> None:
    """Say whether the local Kafka and Redis run and answer."""
    with clear_errors():
        for name, state in stack.status(settings(local_endpoints=False)).items():
            click.echo(f"{name:7} {state}")
