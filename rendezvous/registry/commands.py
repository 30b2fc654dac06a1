"""``rendezvous model list | shadow | unshadow | promote | rollback``: read the registry,
make one change, publish it as one control-topic record (who, when)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rendezvous.messages import ModelVersions, RegistryChange
from rendezvous.model import ModelError, list_models, list_versions, load_manifest
from rendezvous.registry import state
from rendezvous.registry.control import publish_entry, read_registry
from rendezvous.registry.errors import RegistryError
from rendezvous.settings import Settings

ACTIONS = ("shadow", "unshadow", "promote", "rollback")


def change(settings: Settings, name: str, action: str, version: str | None = None, *,
           actor: str, forced: bool = False, note: str | None = None) -> ModelVersions:
    """Apply ``action`` to model ``name``'s entry and publish the result; returns it.

    Raises :class:`RegistryError` (nothing published) when the change cannot be made."""
    if action not in ACTIONS:
        raise RegistryError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    available = list_versions(settings.models_dir, name)
    entries, verdicts = read_registry(settings)
    entry = entries.get(name) or state.initial(name, available, version)
    if action == "rollback":
        target = entry.previous[-1] if entry.previous else entry.live
    elif version is None:
        raise RegistryError(f"model {action} needs a version")
    else:
        target = version

    def read(v: str) -> str | None:
        return manifest_digest(settings, name, v)

    digest = read(target) if action != "unshadow" else entry.sha256.get(target)
    recorded = entry.sha256.get(target)
    if action != "unshadow" and recorded is not None and digest != recorded:
        raise RegistryError(
            f"{name} {target} is not the artifact the registry recorded: its manifest says "
            f"sha256 {_short(digest)}, the registry {_short(recorded)} (recorded when it "
            "entered the registry). A version's bytes never change: restore them, or "
            "import/train the new artifact as a new version")
    made = RegistryChange(action, target, actor, time.time() * 1000.0, forced, note, digest)
    if action == "shadow":
        new = state.shadow(entry, target, available, made)
    elif action == "unshadow":
        new = state.unshadow(entry, target, made)
    elif action == "promote":
        new = state.promote(entry, target, available, verdicts.get((name, target)), made)
    else:
        new = state.rollback(entry, made)
    known = dict(entry.sha256)
    if digest is not None:
        known.setdefault(target, digest)
    new = state.record_digests(new, known, read)
    publish_entry(settings, new)
    return new


def manifest_digest(settings: Settings, name: str, version: str) -> str | None:
    """The sha256 of ``model.onnx`` that ``name``'s version's manifest declares (the bytes
    a backtest, shadow or promote is about), or None when it has no readable manifest."""
    try:
        return load_manifest(settings.models_dir / name / version).sha256
    except ModelError:
        return None


def _short(digest: str | None) -> str:
    return "(none: no readable manifest)" if digest is None else f"{digest[:16]}..."


@dataclass(frozen=True)
class VersionRow:
    """One line of ``model list``."""

    name: str
    version: str
    role: str
    """``live``, ``shadow``, ``previous`` (a rollback target) or ``-``."""
    sha256: str
    auc: float | None
    backtest: str
    """``passed``, ``failed`` or ``-`` (none on record)."""


def list_rows(settings: Settings, timeout_s: float = 10.0
              ) -> tuple[list[VersionRow], dict[str, ModelVersions]]:
    """Every version in the models directory with its role in the registry, and the entries."""
    entries, verdicts = read_registry(settings, timeout_s)
    rows = []
    for name in sorted(set(list_models(settings.models_dir)) | set(entries)):
        available = list_versions(settings.models_dir, name)
        entry = entries.get(name) or (state.initial(name, available) if available else None)
        for version in available:
            try:
                manifest = load_manifest(settings.models_dir / name / version)
                sha, auc = manifest.sha256, manifest.metrics.auc if manifest.metrics else None
            except ModelError:
                sha, auc = "(unreadable manifest)", None
            verdict = verdicts.get((name, version))
            rows.append(VersionRow(name, version, _role(entry, version), sha, auc,
                                   "-" if verdict is None else
                                   ("passed" if verdict.passed else "failed")))
    return rows, entries


def _role(entry: ModelVersions | None, version: str) -> str:
    if entry is None:
        return "-"
    if version == entry.live:
        return "live"
    if version in entry.shadow:
        return "shadow"
    return "previous" if version in entry.previous else "-"


def describe(entry: ModelVersions) -> str:
    """One line: the entry in force and the change that made it."""
    line = f"{entry.name}: live {entry.live}, shadow {', '.join(entry.shadow) or 'none'}"
    if entry.change is not None:
        c = entry.change
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(c.at_ms / 1000.0))
        line += f" ({c.action} {c.version} by {c.actor} at {at}{', forced' if c.forced else ''})"
    return line
