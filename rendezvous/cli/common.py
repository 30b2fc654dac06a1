"""What every subcommand shares: settings from the environment, errors as one clear line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import click
from confluent_kafka import KafkaException
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from rendezvous.errors import RendezvousError
from rendezvous.local.endpoints import with_local_endpoints
from rendezvous.settings import (
    DecoySettings,
    GatewaySettings,
    KafkaSettings,
    LocalSettings,
    MonitorSettings,
    ServeSettings,
    Settings,
    Thresholds,
    WorkerSettings,
)

SECTIONS: dict[type[BaseModel], str] = {
    WorkerSettings: "WORKER", ServeSettings: "SERVE", DecoySettings: "DECOY",
    MonitorSettings: "MONITOR", Thresholds: "MONITOR__THRESHOLDS", GatewaySettings: "GATEWAY",
    KafkaSettings: "KAFKA", LocalSettings: "LOCAL",
}

METRICS_PORT_HELP = ("Port of this process's HTTP /metrics endpoint (0 = any free port, shown "
                     "on the ready line); the same setting as RENDEZVOUS_METRICS_PORT. It "
                     "binds RENDEZVOUS_METRICS_HOST (default 127.0.0.1).")


def settings(*, local_endpoints: bool = True, **given: Any) -> Settings:
    """Settings from the environment with what the command line gave on top: a field
    (``metrics_port=9100``) or a section's fields (``worker={"max_batch": 8}``); a None
    is an option not given, so the environment (or the default) stands. With
    ``local_endpoints``, a Kafka and Redis left unset are those of a running ``rendezvous
    local up`` (commands that start or lease a stack themselves say False)."""
    try:
        base = with_local_endpoints(Settings()) if local_endpoints else Settings()
        update: dict[str, Any] = {}
        for name, value in given.items():
            if isinstance(value, dict):
                section = getattr(base, name)
                update[name] = type(section).model_validate(_merge(section.model_dump(), value))
            elif value is not None:
                update[name] = value
        return base.model_copy(update=update)
    except ValidationError as exc:
        raise click.ClickException(f"invalid setting: {exc}") from exc
    except SettingsError as exc:  # e.g. a project's rendezvous.toml that is not TOML
        raise click.ClickException(str(exc)) from exc


def _merge(current: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in given.items():
        if isinstance(value, dict):
            merged[key] = _merge(current.get(key) or {}, value)
        elif value is not None:
            merged[key] = value
    return merged


def _explained(exc: KafkaException) -> str:
    """The error, and for a failed connection the reason (a refused login, TLS, ...)."""
    from rendezvous.transport.diagnose import is_connection_failure, why_unreachable

    if not is_connection_failure(exc):
        return str(exc)
    try:
        reason = why_unreachable(with_local_endpoints(Settings()))
    except Exception:  # the diagnosis must never hide the error itself
        reason = None
    return f"{exc}\n  because {reason}" if reason else str(exc)


def default(section: type[BaseModel], field: str, unit: str = "") -> str:
    """`` [default: X; env RENDEZVOUS_SECTION__FIELD]`` for an option's help: the one
    default lives in the settings class."""
    value = section.model_fields[field].default
    env = f"RENDEZVOUS_{SECTIONS[section]}__{field.upper()}"
    return f" [default: {value}{unit}; env {env}]"


@contextlib.contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the errors a user can act on (a :class:`RendezvousError`, a Kafka client error,
    an invalid setting) into one line and exit status 1; anything else is a bug and keeps
    its traceback."""
    try:
        yield
    except KafkaException as exc:
        raise click.ClickException(_explained(exc)) from exc
    except RendezvousError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValidationError as exc:
        raise click.ClickException(f"invalid setting: {exc}") from exc
