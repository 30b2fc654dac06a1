"""What an ONNX graph takes and returns, found by shape and type rather than by name.

``model import`` reads a graph's signature once and writes it into the manifest;
every load checks the graph still has it. Supported:

- **inputs**: one 2-D numeric tensor ``[N, F]`` (``matrix``), or one ``[N, 1]`` / ``[N]``
  tensor per feature, named as the feature (``columns``: float, double, int64, string);
- **outputs**: class probabilities as a tensor ``[N, K]`` or as a ZipMap sequence of
  maps (skl2onnx's and onnxmltools' default), a label tensor ``[N]``, and a number per
  row ``[N]`` / ``[N, 1]`` (a regression's value, or one probability per row).

Anything else is refused with a :class:`SignatureError` saying what was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rendezvous.model.errors import ModelError
from rendezvous.model.manifest import DType, Signature

NUMERIC_TYPES: dict[str, DType] = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(int64)": "int64",
    "tensor(int32)": "int64",
}
"""ONNX tensor types a numeric feature may be fed as, and the manifest dtype of each."""
STRING_TYPE = "tensor(string)"
NUMPY_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, STRING_TYPE: object,
}


class SignatureError(ModelError, ValueError):
    """The graph's inputs or outputs are not of a shape this runtime serves."""


@dataclass(frozen=True)
class Port:
    """One graph input or output: its name, ONNX type and shape (ints, names or None)."""

    name: str
    type: str
    shape: tuple[Any, ...]

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def width(self) -> int | None:
        """The size of the second dimension when it is fixed."""
        return self.shape[1] if self.rank == 2 and isinstance(self.shape[1], int) else None

    def describe(self) -> str:
        dims = ", ".join("N" if i == 0 else str(d) if isinstance(d, int) else "?"
                         for i, d in enumerate(self.shape))
        return f"{self.name} {self.type} [{dims}]"


def ports(args: list[Any]) -> list[Port]:
    """ONNX Runtime's ``NodeArg`` list as :class:`Port` values."""
    return [Port(a.name, a.type, tuple(a.shape or ())) for a in args]


def is_zipmap(port: Port) -> bool:
    return port.type.startswith("seq(map(")


def is_label(port: Port) -> bool:
    return port.type in ("tensor(int64)", "tensor(string)", "tensor(int32)") and (
        port.rank == 1 or (port.rank == 2 and port.width == 1))


def is_value(port: Port) -> bool:
    return port.type in ("tensor(float)", "tensor(double)") and (
        port.rank == 1 or (port.rank == 2 and port.width == 1))


def is_matrix(port: Port) -> bool:
    """A float tensor of one row per request and more than one column."""
    return port.type in ("tensor(float)", "tensor(double)") and port.rank == 2 and (
        port.width is None or port.width >= 2)


def find_inputs(inputs: list[Port], feature_names: list[str] | None) -> tuple[str, list[str]]:
    """``(layout, input names)``: one 2-D numeric input (``matrix``) or one input per
    feature (``columns``). Raises :class:`SignatureError` naming what does not fit."""
    found = ", ".join(p.describe() for p in inputs) or "none"
    if len(inputs) == 1 and inputs[0].rank == 2 and inputs[0].type in NUMERIC_TYPES and (
            feature_names is None or len(feature_names) != 1
            or inputs[0].name != feature_names[0]):
        return "matrix", [inputs[0].name]
    for port in inputs:
        if port.type not in NUMERIC_TYPES and port.type != STRING_TYPE:
            raise SignatureError(f"input {port.describe()} is not a numeric or string tensor "
                                 f"(inputs: {found})")
        if not (port.rank == 1 or (port.rank == 2 and port.width in (1, None))):
            raise SignatureError(
                f"input {port.describe()}: expected one 2-D numeric input [N, F] or one "
                f"[N, 1] input per feature (inputs: {found})")
    return "columns", [p.name for p in inputs]


def find_outputs(outputs: list[Port], names: dict[str, str] | None = None) -> dict[str, str]:
    """Which output holds what: ``probabilities``, ``label`` and/or ``value`` -> output name.

    ``names`` (from the manifest or ``--output``) fixes a role's output by name; the rest
    is found by shape and type. Raises :class:`SignatureError` when no output can be used.
    """
    by_name = {p.name: p for p in outputs}
    roles: dict[str, str] = {}
    for role, name in (names or {}).items():
        if name not in by_name:
            raise SignatureError(f"the graph has no output {name!r} (outputs: "
                                 f"{', '.join(p.describe() for p in outputs)})")
        roles[role] = name
    taken = set(roles.values())
    for port in outputs:
        if port.name in taken:
            continue
        if (is_zipmap(port) or is_matrix(port)) and "probabilities" not in roles:
            roles["probabilities"] = port.name
        elif is_label(port) and "label" not in roles:
            roles["label"] = port.name
        elif is_value(port) and "value" not in roles and "probabilities" not in roles:
            roles["value"] = port.name
    if "probabilities" in roles:
        roles.pop("value", None)
    if "probabilities" not in roles and "value" not in roles:
        raise SignatureError(
            "no output holds probabilities [N, K], a ZipMap or a value [N, 1]: outputs "
            f"{', '.join(p.describe() for p in outputs) or 'none'} (a classifier exported "
            "without probabilities cannot be served: export with predict_proba)")
    return roles


def signature_of(inputs: list[Port], outputs: list[Port], feature_names: list[str] | None,
                 output_names: dict[str, str] | None = None) -> Signature:
    """The signature of a graph with these inputs and outputs."""
    layout, input_names = find_inputs(inputs, feature_names)
    roles = find_outputs(outputs, output_names)
    return Signature(layout=layout, inputs=input_names,  # type: ignore[arg-type]
                     probabilities=roles.get("probabilities"), label=roles.get("label"),
                     value=roles.get("value"))


BUNDLED = Signature(layout="matrix", inputs=["input"], probabilities="probabilities",
                    label="label")
"""The signature of a manifest that has none: the bundled models' layout."""
