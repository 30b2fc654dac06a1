"""The one base of every error rendezvous raises on purpose.

The CLI prints a :class:`RendezvousError` as one line (it says what to do);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class RendezvousError(Exception):
    """An error a user can act on; its message says how."""


class SettingsError(RendezvousError, RuntimeError):
    """A setting is missing or wrong (no broker to talk to, a bad value)."""
