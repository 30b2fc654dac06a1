"""An ONNX file as ``model import`` reads it: the bytes, an ONNX Runtime session on them, the
inputs and outputs (:class:`~rendezvous.model.signature.Port`), the exporter, and the class
labels the graph itself holds (a ZipMap's keys, else its one classifier node's), in the
graph's own order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from rendezvous.messages import Label
from rendezvous.model.errors import ImportRefused
from rendezvous.model.runtime import session_options
from rendezvous.model.signature import Port, ports


@dataclass(frozen=True)
class Graph:
    """An ONNX file ONNX Runtime loaded, with what the importer reads of it."""

    path: Path
    data: bytes
    session: ort.InferenceSession
    inputs: list[Port]
    outputs: list[Port]
    producer_name: str
    producer_version: str
    classlabels: list[Label] | None
    """Class labels in the graph's own order: a ZipMap's keys, else its classifier's."""

    @property
    def producer(self) -> str:
        """The exporter, e.g. ``skl2onnx 1.20.0``, as the file names it."""
        return f"{self.producer_name} {self.producer_version}".strip() or "unknown exporter"


def read_graph(path: Path) -> Graph:
    """Read and load ``path``; :class:`ImportRefused` when it is not ONNX or ORT refuses it."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImportRefused(f"{path} cannot be read: {exc.strerror or exc}") from None
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ImportRefused(f"{path} is not an ONNX model: {exc}") from None
    if not proto.ir_version or not proto.graph.output:
        raise ImportRefused(f"{path} is not an ONNX model: no IR version or no graph outputs "
                            "in it")
    try:
        session = ort.InferenceSession(data, sess_options=session_options(),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own untyped exceptions for bad graphs
        raise ImportRefused(f"ONNX Runtime cannot load {path}: {exc}") from None
    found: dict[str, list[Label]] = {}
    for node in proto.graph.node:
        for attribute in node.attribute:
            if attribute.name.startswith("classlabels_") and node.op_type not in found:
                found[node.op_type] = ([s.decode() for s in attribute.strings]
                                       or [int(i) for i in attribute.ints])
    classifiers = [labels for op, labels in found.items() if op != "ZipMap"]
    classlabels = found.get("ZipMap") or (classifiers[0] if len(classifiers) == 1 else None)
    return Graph(Path(path), data, session, ports(session.get_inputs()),
                 ports(session.get_outputs()), proto.producer_name, proto.producer_version,
                 classlabels)
