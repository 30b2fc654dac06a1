"""The answer to an inference request: one row of every output per input row."""

from __future__ import annotations

from typing import Any

from rendezvous.gateway.codec.messages import InferenceResponse, ResponseOutput
from rendezvous.gateway.codec.model_io import PROBABILITIES_OUTPUT, ModelIO
from rendezvous.messages import Scored

NO_LABEL = -1
"""``label`` of a row that got no model's answer (``timeout`` / ``rejected``) when the
labels are integers (INT64); with string labels (BYTES) it is the empty string."""

_BINARY = ModelIO.numeric(())


def response(model_name: str, model_version: str, request_id: str | None,
             results: list[Scored], outputs: tuple[str, ...],
             parameters: dict[str, str | float | bool],
             io: ModelIO = _BINARY) -> InferenceResponse:
    """The answer for ``results`` (one per row, in row order), with ``outputs`` of
    :attr:`ModelIO.outputs`:

    - ``score`` ``[N]``: FP32 for a classifier (its probability), FP64 for a regression
      (the predicted value); a row without a score (``timeout``, ``rejected``) is null
      in JSON, which OIP clients read as NaN.
    - ``label`` ``[N]`` (classifiers only): INT64 when the model's classes are integers,
      a row without a label :data:`NO_LABEL` (-1); BYTES when they are strings, a row
      without a label the empty string (as ``model`` says "" for no model). Should a
      result carry a label the datatype cannot hold (a string among integer classes), the
      answer's ``label`` is BYTES of every label as text, "" for none.
    - ``status`` and ``model`` ``[N]``: BYTES (``model`` "" when no model answered).
    - ``probabilities`` ``[N, K]`` (multiclass only): FP32, column ``k`` the probability
      of class ``io.classes[k]`` (the ``classes`` parameter, a JSON array); a row answered
      without probabilities (``timeout``, ``rejected``, or a model that gave none) and a
      class missing from a row's probabilities are NaN, null in JSON, never 0: a 0 would
      read as a real answer of "impossible".
    """
    n = len(results)
    tensors = []
    for name in outputs:
        if name == "score":
            # JSON has no NaN: a row without a score says null (tritonclient reads NaN).
            tensors.append(ResponseOutput(name, [n], io.score_datatype,
                                          [r.score for r in results]))
        elif name == "label":
            tensors.append(ResponseOutput(name, [n], *_labels(results, io)))
        elif name == "status":
            tensors.append(ResponseOutput(name, [n], "BYTES", [r.status for r in results]))
        elif name == "model":
            tensors.append(ResponseOutput(name, [n], "BYTES", [r.model or "" for r in results]))
        elif name == PROBABILITIES_OUTPUT:
            keys = io.class_keys
            data = [p.get(k) if (p := r.probabilities) is not None else None
                    for r in results for k in keys]
            tensors.append(ResponseOutput(name, [n, len(keys)], "FP32", data))
            parameters = {**parameters, "classes": io.classes_text()}
    return InferenceResponse(model_name, tensors, model_version, request_id, parameters)


def _labels(results: list[Scored], io: ModelIO) -> tuple[str, list[Any]]:
    labels = [r.label for r in results]
    if io.label_datatype == "INT64" and all(
            label is None or label.__class__ is int for label in labels):
        return "INT64", [NO_LABEL if label is None else label for label in labels]
    return "BYTES", ["" if label is None else str(label) for label in labels]
