"""Errors of the embedded local stack."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class LocalStackError(RendezvousError, RuntimeError):
    """The local Kafka/Redis stack could not start or stop; the message says what to do."""


class MissingTool(LocalStackError):
    """A program the local stack needs is not installed."""

    def __init__(self, program: str, fix: str) -> None:
        super().__init__(f"`{program}` not found on PATH: {fix}")
        self.program = program
