"""What every subcommand shares: settings from the environment, errors as one clear line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
from confluent_kafka import KafkaException
from pydantic import ValidationError

from rendezvous.errors import RendezvousError
from rendezvous.settings import Settings


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid RENDEZVOUS_* setting: {exc}") from exc


@contextlib.contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the errors a user can act on (a :class:`RendezvousError`, a Kafka client error,
    an invalid setting) into one line and exit status 1; anything else is a bug and keeps
    its traceback."""
    try:
        yield
    except (RendezvousError, KafkaException) as exc:
        raise click.ClickException(str(exc)) from exc
    except ValidationError as exc:
        raise click.ClickException(f"invalid setting: {exc}") from exc
