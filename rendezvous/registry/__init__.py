"""The model registry: which version of each model is live and which are shadows, kept on
the compacted control topic; workers follow it, commands change it."""

from rendezvous.registry.control import (
    RegistryWatcher,
    publish_entry,
    publish_verdict,
    read_registry,
)
from rendezvous.registry.errors import PromotionRefused, RegistryError

__all__ = [
    "PromotionRefused",
    "RegistryError",
    "RegistryWatcher",
    "publish_entry",
    "publish_verdict",
    "read_registry",
]
