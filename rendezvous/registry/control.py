"""The model registry on the compacted control topic: publish entries and verdicts, follow them.

Keys: ``model/<name>`` holds a :class:`~rendezvous.messages.ModelVersions` (the entry in
force), ``backtest/<name>/<version>`` a :class:`~rendezvous.messages.BacktestVerdict`
(the last backtest of that version). Every reader replays the topic from its start;
the policy (key ``policy``) shares the topic and is skipped here.
"""

from __future__ import annotations

import time

from rendezvous.messages import (
    BACKTEST_KEY_PREFIX,
    MODEL_KEY_PREFIX,
    BacktestVerdict,
    ModelVersions,
    Undecodable,
    backtest_key,
    decode_backtest_verdict,
    decode_model_versions,
    encode,
    model_key,
)
from rendezvous.service.audit import publish_audited
from rendezvous.settings import Settings
from rendezvous.transport.bad_records import BadRecords, where
from rendezvous.transport.clients import check_access
from rendezvous.transport.reader import TopicReader


def publish_entry(settings: Settings, entry: ModelVersions) -> None:
    """Make ``entry`` the registry entry in force for its model (workers follow it); the
    change is kept under an audit key too (``rendezvous policy history``)."""
    at_ms = entry.change.at_ms if entry.change is not None else None
    publish_audited(settings, model_key(entry.name), encode(entry), "model", at_ms,
                    f"the registry entry of {entry.name}")


def publish_verdict(settings: Settings, verdict: BacktestVerdict) -> None:
    """Record the last backtest of ``verdict.name`` at ``verdict.version``."""
    publish_audited(settings, backtest_key(verdict.name, verdict.version), encode(verdict),
                    "backtest", verdict.at_ms, "the backtest verdict")


class RegistryWatcher:
    """Reads the control topic from the start and keeps the newest entry of every model and
    the newest verdict of every version; :meth:`poll` says which models changed."""

    def __init__(self, settings: Settings, name: str = "registry-reader",
                 needed_by: str | None = None) -> None:
        if needed_by is not None:  # fatal at start, not a registry that silently is empty
            check_access(settings, reads=[settings.topic("control")],
                         what=f"{needed_by} (to follow the model registry)")
        # The topic is idle nearly always, so fetches wait as long as librdkafka's default.
        self._reader = TopicReader(settings, settings.topic("control"), name=name,
                                   leader_wait_s=0.0, config={"fetch.wait.max.ms": 500})
        self._bad = BadRecords(name)
        self.entries: dict[str, ModelVersions] = {}
        self.verdicts: dict[tuple[str, str], BacktestVerdict] = {}

    def digest(self, name: str, version: str) -> str | None:
        """The sha256 the registry recorded for ``name``'s ``version`` (None: none recorded)."""
        entry = self.entries.get(name)
        return entry.sha256.get(version) if entry is not None else None

    def read_current(self, timeout_s: float = 10.0) -> dict[str, ModelVersions]:
        """Read to the end of the topic (at most ``timeout_s``); the entries in force."""
        deadline = time.monotonic() + timeout_s
        while not self._reader.caught_up() and time.monotonic() < deadline:
            self.poll(0.2)
        return self.entries

    def poll(self, timeout_s: float = 0.0) -> set[str]:
        """Apply the records available now; the names of models whose entry changed."""
        changed: set[str] = set()
        for record in self._reader.poll(timeout_s, 100):
            key, value = record.key() or b"", record.value()
            if value is None:
                continue
            try:
                if key.startswith(MODEL_KEY_PREFIX):
                    entry = decode_model_versions(value)
                    if self.entries.get(entry.name) != entry:
                        self.entries[entry.name] = entry
                        changed.add(entry.name)
                elif key.startswith(BACKTEST_KEY_PREFIX):
                    verdict = decode_backtest_verdict(value)
                    self.verdicts[(verdict.name, verdict.version)] = verdict
            except Undecodable as exc:  # keep the entry in force
                self._bad.skip("control", where(record), f"ignoring this record: {exc}")
        return changed

    def close(self) -> None:
        self._reader.close()


def read_registry(settings: Settings, timeout_s: float = 10.0
                  ) -> tuple[dict[str, ModelVersions], dict[tuple[str, str], BacktestVerdict]]:
    """The registry entries and backtest verdicts in force, read from the control topic."""
    watcher = RegistryWatcher(settings)
    try:
        watcher.read_current(timeout_s)
        return dict(watcher.entries), dict(watcher.verdicts)
    finally:
        watcher.close()
