"""Errors raised by the rendezvous core, all under one base exception."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class CoreError(RendezvousError):
    """Base class of every error the core raises."""


class PolicyError(CoreError, ValueError):
    """A policy that cannot be applied (empty or repeated preference, bad rule, bad deadline).

    The caller keeps the policy it had; a bad control record never stops the pipeline.
    """
