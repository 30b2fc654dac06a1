"""Model swaps from the registry, for an embedded rendezvous linked to a deployment.

The worker's own follower (:class:`rendezvous.worker.follow.Follower`), one per model loaded
from the models directory: the live version the control topic names is loaded beside the
one in use (sha256 checked against the registry's), then swapped in; calls made after the
swap use it, calls under way finish on the old one. A version that fails to load is logged
and the one in use stays. Versions pinned (``models={name: version}``) and model objects
passed to ``Embedded(models=[...])`` are not followed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from rendezvous.embedded.lanes import Lane
from rendezvous.settings import Settings

log = logging.getLogger(__name__)

CHECK_EVERY_S = 0.25


class ModelFollower:
    """Follows each lane's registry entry from a thread of its own."""

    def __init__(self, settings: Settings, models_dir: Path, lanes: Iterable[Lane],
                 timeout_s: float = 10.0) -> None:
        from rendezvous.model import Model, list_versions, load_model, resolve_model
        from rendezvous.registry.control import RegistryWatcher
        from rendezvous.worker.follow import Follower

        self._watcher = RegistryWatcher(settings, name="embedded-registry")
        self._followers: list[tuple[Lane, Follower]] = []
        for lane in lanes:
            if not isinstance(lane.model, Model):
                continue  # given as an object: the application owns it
            name = lane.model.name

            def load(version: str, name: str = name) -> Model:
                return load_model(resolve_model(models_dir, name, version))

            versions = list_versions(models_dir, name)
            follower = Follower(self._watcher, name, "live", load,
                                versions[-1] if versions else None)
            follower._loaded[lane.model.version] = lane.model  # noqa: SLF001 - no second load
            self._followers.append((lane, follower))
        for lane, follower in self._followers:
            self._swap(lane, follower.initial(timeout_s))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rendezvous-embedded-registry",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._watcher.close()

    def _run(self) -> None:
        while not self._stop.wait(CHECK_EVERY_S):
            for lane, follower in self._followers:
                try:
                    follower.check()
                except Exception:  # a broker hiccup must not end the following
                    log.exception("embedded: reading the model registry failed; trying again")
                    continue
                staged = follower.take()
                if staged is not None:
                    self._swap(lane, staged)

    @staticmethod
    def _swap(lane: Lane, models: list) -> None:
        if models and models[0] is not lane.model:
            log.warning("embedded: %s %s -> %s (model registry)", lane.model.name,
                        lane.model.version, models[0].version)
            lane.model = models[0]  # one assignment: each call reads the lane's model once
