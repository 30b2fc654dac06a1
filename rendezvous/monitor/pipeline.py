"""What the monitor learns of the pipeline from the broker, not from its records: the model
versions in force (live and shadow, from the registry on the ``control`` topic) and each
consumer group's lag (committed offsets against high watermarks).

Both are read off the event loop, on a thread of their own, once per window: a lag is an
admin round trip per group, and the page is the only reader. A part the monitor may not
read (an ACL, a broker that does not answer) is reported as an error string, not raised:
the rest of the page stays up.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from rendezvous.registry.control import RegistryWatcher
from rendezvous.settings import Settings
from rendezvous.transport.connect import kafka_config

log = logging.getLogger(__name__)

ADMIN_TIMEOUT_S = 10.0


class PipelineView:
    """Registry versions and group lags, refreshed every ``every_s`` on a daemon thread;
    :attr:`view` is a JSON-ready dict swapped whole (readers need no lock)."""

    def __init__(self, settings: Settings, every_s: float) -> None:
        self.settings = settings
        self.every_s = every_s
        self.view: dict[str, Any] = {"at": None, "versions": {}, "lag": {}, "errors": {}}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor-pipeline", daemon=True)
        self._watcher: RegistryWatcher | None = None
        self._admin: AdminClient | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self.every_s)
        if self._watcher is not None:
            self._watcher.close()

    def refresh(self) -> None:
        """Read both now and publish them (errors included) as :attr:`view`."""
        errors: dict[str, str] = {}
        versions: dict[str, Any] = {}
        lag: dict[str, Any] = {}
        try:
            versions = self._versions()
        except Exception as exc:  # noqa: BLE001 (an ACL or a broker away: shown, not fatal)
            errors["versions"] = f"cannot read the registry on the control topic: {exc}"
        try:
            lag = self._lags()
        except Exception as exc:  # noqa: BLE001
            errors["lag"] = f"cannot read the consumer groups' offsets: {exc}"
        for part, message in errors.items():
            log.debug("monitor page: %s: %s", part, message)
        self.view = {"at": time.time() * 1000, "versions": versions, "lag": lag,
                     "errors": errors}

    def _versions(self) -> dict[str, Any]:
        if self._watcher is None:
            self._watcher = RegistryWatcher(self.settings, name="monitor-registry")
        entries = self._watcher.read_current(timeout_s=ADMIN_TIMEOUT_S)
        return {name: {"live": e.live, "shadow": list(e.shadow),
                       "changed_ms": e.change.at_ms if e.change is not None else None}
                for name, e in sorted(entries.items())}

    def _lags(self) -> dict[str, Any]:
        """Per consumer group of this pipeline (its name starts with the topic prefix): the
        records of its topics not yet committed, in total and per topic."""
        if self._admin is None:
            self._admin = AdminClient(kafka_config(self.settings))
        admin = self._admin
        prefix = self.settings.topic_prefix
        listed = admin.list_consumer_groups(request_timeout=ADMIN_TIMEOUT_S)
        groups = sorted(g.group_id for g in listed.result(ADMIN_TIMEOUT_S).valid
                        if g.group_id.startswith(prefix))
        committed: dict[str, list[TopicPartition]] = {}
        for group in groups:  # one group per request: the admin API asks so
            future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                       request_timeout=ADMIN_TIMEOUT_S)
            result = future[group].result(ADMIN_TIMEOUT_S)
            committed[group] = [tp for tp in result.topic_partitions
                                if tp.offset >= 0 and tp.topic.startswith(prefix)]
        wanted = {(tp.topic, tp.partition) for tps in committed.values() for tp in tps}
        highs = _high_watermarks(admin, wanted)
        out: dict[str, Any] = {}
        for group, tps in committed.items():
            if not tps:
                continue
            per_topic: dict[str, int] = {}
            for tp in tps:
                high = highs.get((tp.topic, tp.partition))
                if high is not None:
                    topic = tp.topic.removeprefix(prefix)
                    per_topic[topic] = per_topic.get(topic, 0) + max(high - tp.offset, 0)
            out[group.removeprefix(prefix)] = {"total": sum(per_topic.values()),
                                               "topics": per_topic}
        return out


def _high_watermarks(admin: AdminClient,
                     partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
    if not partitions:
        return {}
    futures: dict[TopicPartition, Future[Any]] = admin.list_offsets(
        {TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions},
        request_timeout=ADMIN_TIMEOUT_S)
    highs = {}
    for tp, future in futures.items():
        try:
            highs[(tp.topic, tp.partition)] = future.result(ADMIN_TIMEOUT_S).offset
        except KafkaException:  # a partition without a leader now: its lag is unknown
            continue
    return highs
