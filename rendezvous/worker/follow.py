"""A worker follows its model's registry entry: which versions it must score, loaded in the
background and handed over between two batches.

A *live* worker scores the entry's live version; a *shadow* worker scores every shadow
version (none: it reads and skips). When the entry changes, the new versions are loaded
(sha256 verified) in a thread beside the ones in use, and :meth:`Follower.take` hands
them to the scorer at its next batch: no restart, no batch lost. A version that fails to
load is logged and the ones in use stay.

The sha256 checked is the registry's: each entry records the digest of every version it
names (taken from the manifest when the version entered the registry), so a
``model.onnx`` replaced after its backtest or promote, manifest and all, is refused
(:class:`~rendezvous.worker.errors.WorkerError`), and the worker stays on what it scores.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from rendezvous.errors import RendezvousError
from rendezvous.messages import ModelVersions
from rendezvous.model import Model
from rendezvous.registry.control import RegistryWatcher
from rendezvous.worker.errors import WorkerError

log = logging.getLogger(__name__)

Role = Literal["live", "shadow"]
CHECK_EVERY_S = 0.25
"""How often the control topic is polled (a poll of an idle topic costs microseconds)."""


def refusal(name: str, version: str, found: str, expected: str, where: str) -> str:
    """Why version ``version`` of ``name`` is not loaded: its bytes are not the registry's."""
    return (f"refusing {name} {version}: {where} has sha256 {found[:16]}..., the registry "
            f"recorded {expected[:16]}... for that version (its bytes changed after it was "
            "backtested/shadowed/promoted); restore the artifact or publish a new version")


def wanted(entry: ModelVersions | None, role: Role, newest: str | None) -> list[str]:
    """The versions a worker of ``role`` scores under ``entry`` (None: none published yet,
    live workers serve the newest version of the models directory)."""
    if role == "shadow":
        return list(entry.shadow) if entry is not None else []
    if entry is not None:
        return [entry.live]
    return [newest] if newest is not None else []


class Follower:
    """Follows model ``name``'s entry for ``role``; ``load(version)`` loads one version."""

    def __init__(self, watcher: RegistryWatcher, name: str, role: Role,
                 load: Callable[[str], Model], newest: str | None) -> None:
        self.watcher, self.name, self.role, self.load = watcher, name, role, load
        self.newest = newest
        self.versions: list[str] = []
        self._loaded: dict[str, Model] = {}
        self._staged: list[Model] | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failed: list[str] | None = None
        self._next_check = 0.0

    def initial(self, timeout_s: float = 10.0) -> list[Model]:
        """Read the entry in force and load its versions (blocking: before the first batch)."""
        entries = self.watcher.read_current(timeout_s)
        self.versions = wanted(entries.get(self.name), self.role, self.newest)
        models = [self._get(v) for v in self.versions]
        log.info("%s worker of %s: versions %s (registry entry %s)", self.role, self.name,
                 self.versions or "none", "found" if self.name in entries else "not published")
        return models

    def check(self) -> None:
        """Poll the control topic (at most every ``CHECK_EVERY_S``); start loading on a change."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY_S
        self.watcher.poll(0.0)
        target = wanted(self.watcher.entries.get(self.name), self.role, self.newest)
        if target in (self.versions, self._failed):
            return
        if self._thread is not None and self._thread.is_alive():
            return  # looked at again once this load ends
        log.warning("registry changed: %s worker of %s loading versions %s (in use: %s)",
                    self.role, self.name, target or "none", self.versions or "none")
        self._thread = threading.Thread(target=self._load_all, args=(target,),
                                        name=f"load-{self.name}", daemon=True)
        self._thread.start()

    def _load_all(self, target: list[str]) -> None:
        try:
            models = [self._get(v) for v in target]
        except RendezvousError as exc:  # ModelError, or the worker's WorkerError around it
            log.error("cannot load %s versions %s, keeping %s: %s", self.name, target,
                      self.versions or "none", exc)
            self._failed = target
            return
        with self._lock:
            self._staged = models
            self.versions = target
            self._failed = None
            self._loaded = {m.version: m for m in models}

    def _get(self, version: str) -> Model:
        model = self._loaded.get(version)
        if model is None:
            model = self.load(version)
            expected = self.watcher.digest(self.name, version)
            if expected is not None and model.manifest.sha256 != expected:
                raise WorkerError(refusal(self.name, version, model.manifest.sha256, expected,
                                          str(model.path)))
            self._loaded[version] = model
        return model

    def take(self) -> list[Model] | None:
        """The newly loaded versions, once (None when nothing changed since the last take)."""
        if self._staged is None:
            return None
        with self._lock:
            staged, self._staged = self._staged, None
        return staged
