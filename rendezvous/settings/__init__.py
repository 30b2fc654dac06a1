"""One typed, frozen settings object for every rendezvous process.

Every field can be set from the environment with the ``RENDEZVOUS_`` prefix, a
section's with ``__`` (``RENDEZVOUS_KAFKA__LINGER_MS=2``). ``KAFKA_BOOTSTRAP_SERVERS``
and ``REDIS_URL`` are honoured too (below ``RENDEZVOUS_KAFKA__BOOTSTRAP_SERVERS`` and
``RENDEZVOUS_REDIS__URL``), so an existing cluster is one variable away; when
neither is set, the CLI uses the endpoints written by ``rendezvous local up``.

Below the environment, a project's settings file: ``rendezvous.toml`` in the working
directory (``rendezvous init`` writes one), any field by name, sections as tables
(``[worker]``); relative paths in it are relative to its directory.

Settings only declare: clients are built in :mod:`rendezvous.transport.connect`, the
local stack's endpoints are read in :mod:`rendezvous.local.endpoints`. A setting that
moved into a section keeps its old name working, with a warning
(:data:`rendezvous.settings.sources.RENAMED`).
"""

from rendezvous.settings.decoy import DecoySettings
from rendezvous.settings.gateway import MIN_API_KEY_LENGTH, GatewaySettings
from rendezvous.settings.kafka import KafkaSettings
from rendezvous.settings.local import LocalSettings
from rendezvous.settings.monitor import MonitorSettings, Thresholds
from rendezvous.settings.paths import PACKAGE_DIR, SETTINGS_FILE
from rendezvous.settings.redis import RedisSettings
from rendezvous.settings.root import Settings
from rendezvous.settings.serve import ServeSettings
from rendezvous.settings.sources import RENAMED, ProjectFile
from rendezvous.settings.worker import WorkerSettings

__all__ = [
    "MIN_API_KEY_LENGTH", "PACKAGE_DIR", "RENAMED", "SETTINGS_FILE", "DecoySettings",
    "GatewaySettings", "KafkaSettings", "LocalSettings", "MonitorSettings", "ProjectFile",
    "RedisSettings", "ServeSettings", "Settings", "Thresholds", "WorkerSettings",
]
