"""What one model takes and answers over OIP, read from its manifest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rendezvous.gateway.codec.datatypes import is_int
from rendezvous.messages import Label

if TYPE_CHECKING:
    from rendezvous.model.manifest import Manifest

FEATURES_INPUT = "features"
OUTPUTS = ("score", "label", "status", "model")
"""Output tensors of a classifier's answer, in this order (a binary classifier's: all of
them; :attr:`ModelIO.outputs` has every model's)."""
PROBABILITIES_OUTPUT = "probabilities"


class ModelIO:
    """What one model takes and answers over OIP, from its manifest: the features (name
    and dtype, in the model's order), the task and the classes.

    The gateway builds it once from the manifest named by ``gateway.features_from``;
    :meth:`numeric` is a binary classifier over ``float32`` features (the bundled shape).
    """

    def __init__(self, features: Sequence[tuple[str, str]], task: str = "binary",
                 classes: Sequence[Label] = (0, 1)) -> None:
        self.names = [name for name, _ in features]
        self.dtypes = [dtype for _, dtype in features]
        self.task = task
        self.classes: list[Label] = list(classes) if task != "regression" else []
        self.strings = [n for n, d in features if d == "string"]
        self.all_numeric = not self.strings
        self.matrix = self.all_numeric and FEATURES_INPUT not in self.names
        """Whether the ``features`` ``[N, F]`` tensor is offered."""
        self.integer_columns = [i for i, d in enumerate(self.dtypes) if d == "int64"]
        self.float32_columns = [i for i, d in enumerate(self.dtypes) if d == "float32"]
        self.multiclass = task == "multiclass"
        self.label_datatype: str | None = (
            None if task == "regression" else
            "INT64" if all(is_int(c) for c in self.classes) else "BYTES")
        """INT64 when every class is an integer, BYTES when any is a string; None: no
        ``label`` output (regression)."""
        self.score_datatype = "FP64" if task == "regression" else "FP32"
        outputs = ["score"]
        if self.label_datatype is not None:
            outputs.append("label")
        outputs += ["status", "model"]
        if self.multiclass:
            outputs.append(PROBABILITIES_OUTPUT)
        self.outputs = tuple(outputs)
        """Output tensors of every answer, in this order (a multiclass model's
        ``probabilities`` last, so the others keep their places)."""
        self.class_keys = [str(c) for c in self.classes]
        """The classes as :attr:`Scored.probabilities` keys them."""

    @classmethod
    def numeric(cls, names: Sequence[str]) -> ModelIO:
        """A binary classifier (classes 0, 1) over ``float32`` features ``names``."""
        return cls([(name, "float32") for name in names])

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ModelIO:
        return cls([(f.name, f.dtype) for f in manifest.features], manifest.task,
                   manifest.classes)

    def classes_text(self) -> str:
        """The classes as a JSON array (``[0,1,2]``, ``["a","b"]``): the ``classes``
        parameter; the columns of ``probabilities`` are in this order."""
        return json.dumps(self.classes, separators=(",", ":"))
