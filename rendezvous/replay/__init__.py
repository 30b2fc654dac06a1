"""Replay: re-produce archived records to a topic, in per-partition order, at a chosen pace."""

from rendezvous.replay.errors import ReplayError
from rendezvous.replay.replayer import ReplayConfig, ReplayResult, replay, replay_order

__all__ = ["ReplayConfig", "ReplayError", "ReplayResult", "replay", "replay_order"]
