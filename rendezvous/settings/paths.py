"""Where the settings point by default: the installed package, the XDG directories."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
"""The installed package: its ``topics.yaml`` and ``models/`` are the defaults, so every
command works from any directory."""

SETTINGS_FILE = "rendezvous.toml"
"""A project's settings file, read from the working directory (below the environment)."""


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/rendezvous`` (``~/.local/state/rendezvous``)."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "rendezvous"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rendezvous`` (``~/.cache/rendezvous``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rendezvous"
