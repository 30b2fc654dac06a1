"""Where settings come from besides the arguments and the environment: the project's
``rendezvous.toml``, and the old names of settings that moved into a section, which
keep working with a deprecation warning."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, TomlConfigSettingsSource

from rendezvous.errors import SettingsError
from rendezvous.settings.paths import SETTINGS_FILE

log = logging.getLogger("rendezvous.settings")

ENV_PREFIX = "RENDEZVOUS_"

RENAMED: dict[str, tuple[str, str]] = {
    "bootstrap_servers": ("kafka", "bootstrap_servers"),
    "security_protocol": ("kafka", "security_protocol"),
    "sasl_mechanism": ("kafka", "sasl_mechanism"),
    "sasl_username": ("kafka", "sasl_username"),
    "sasl_password": ("kafka", "sasl_password"),
    "ssl_ca_location": ("kafka", "ssl_ca_location"),
    "ssl_certificate_location": ("kafka", "ssl_certificate_location"),
    "ssl_key_location": ("kafka", "ssl_key_location"),
    "linger_ms": ("kafka", "linger_ms"),
    "fetch_wait_max_ms": ("kafka", "fetch_wait_max_ms"),
    "fetch_min_bytes": ("kafka", "fetch_min_bytes"),
    "local_brokers": ("local", "brokers"),
    "kafka_heap": ("local", "kafka_heap"),
    "cluster_heap": ("local", "cluster_heap"),
    "kafka_gc": ("local", "kafka_gc"),
    "kafka_network_threads": ("local", "network_threads"),
    "kafka_io_threads": ("local", "io_threads"),
    "redis_url": ("redis", "url"),
    "redis_username": ("redis", "username"),
    "redis_password": ("redis", "password"),
}
"""Old top-level name -> (section, field) it moved to."""

PLAIN_ENV: dict[str, tuple[str, str]] = {
    "KAFKA_BOOTSTRAP_SERVERS": ("kafka", "bootstrap_servers"),
    "REDIS_URL": ("redis", "url"),
}
"""Variables without the prefix, honoured (below the prefixed ones) so that an existing
cluster is one variable away."""

_warned: set[str] = set()  # each old name is reported once per process


def env_name(section: str, field: str) -> str:
    """The environment variable of a section's field: ``RENDEZVOUS_KAFKA__LINGER_MS``."""
    return f"{ENV_PREFIX}{section.upper()}__{field.upper()}"


def _deprecated(old: str, new: str) -> None:
    if old not in _warned:
        _warned.add(old)
        log.warning("%s is deprecated and will stop working: use %s", old, new)


def moved(values: dict[str, Any], old_as: str, new_as: str) -> dict[str, Any]:
    """``values`` with each old top-level name moved into its section (a value given under
    the new name wins); ``old_as`` and ``new_as`` spell the names in the warning, with
    ``{old}``, ``{section}`` and ``{field}``."""
    found = dict(values)
    for old, (section, field) in RENAMED.items():
        if old not in found:
            continue
        value = found.pop(old)
        _deprecated(old_as.format(old=old), new_as.format(section=section, field=field))
        current = found.get(section)
        merged = dict(current) if isinstance(current, dict) else {}
        merged.setdefault(field, value)
        found[section] = merged
    return found


class RenamedEnv(PydanticBaseSettingsSource):
    """The old environment variables (``RENDEZVOUS_LINGER_MS``) of settings that moved into
    a section, then :data:`PLAIN_ENV`; below the new names (``RENDEZVOUS_KAFKA__LINGER_MS``),
    which win."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads all of them at once

    def __call__(self) -> dict[str, Any]:
        environ = {name.upper(): value for name, value in os.environ.items()}
        found: dict[str, dict[str, str]] = {}
        for old, (section, field) in RENAMED.items():
            value = environ.get(f"{ENV_PREFIX}{old.upper()}")
            if value is not None:
                _deprecated(f"{ENV_PREFIX}{old.upper()}", env_name(section, field))
                found.setdefault(section, {})[field] = value
        for name, (section, field) in PLAIN_ENV.items():
            value = environ.get(name)
            if value is not None:
                found.setdefault(section, {}).setdefault(field, value)
        return found


class Renamed(PydanticBaseSettingsSource):
    """Another source (the arguments) with the old top-level names moved to their sections."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource
                 ) -> None:
        super().__init__(settings_cls)
        self.inner = inner

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        return moved(self.inner(), "Settings({old}=...)", "Settings({section}={{'{field}': ...}})")


class ProjectFile(TomlConfigSettingsSource):
    """``rendezvous.toml`` of the working directory, its relative paths made absolute from
    there (top-level fields and one section deep), old top-level names moved to their
    sections."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        try:
            super().__init__(settings_cls)
        except ValueError as exc:  # tomllib.TOMLDecodeError
            raise SettingsError(f"{Path(SETTINGS_FILE).resolve()} is not valid TOML: {exc}"
                                ) from None

    def __call__(self) -> dict[str, Any]:
        base = Path(SETTINGS_FILE).resolve().parent

        def resolved(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
            for name, field in model.model_fields.items():
                value, kind = values.get(name), field.annotation
                if isinstance(value, str) and Path in (kind, *getattr(kind, "__args__", ())):
                    values[name] = str(base / Path(value).expanduser())
                elif isinstance(value, dict) and model is self.settings_cls and isinstance(
                        kind, type) and issubclass(kind, BaseModel):
                    values[name] = resolved(kind, dict(value))
            return values

        return resolved(self.settings_cls, moved(
            super().__call__(), f"{SETTINGS_FILE}: {{old}}", "[{section}] {field}"))
