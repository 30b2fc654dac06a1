"""Errors of the model subpackage, under one base: :class:`ModelError`."""

from __future__ import annotations

from rendezvous.errors import RendezvousError


class ModelError(RendezvousError):
    """Base of every error raised while finding, loading or running a model."""


class ArtifactError(ModelError):
    """A model artifact is missing, corrupt, or does not match its manifest."""


class InputShapeError(ModelError, ValueError):
    """The rows given to ``Model.predict`` do not have the model's feature count."""


class ImportRefused(ModelError):
    """``model import`` will not import this graph with this data; the message says why
    (naming the file, input, output or column) and nothing was written."""
