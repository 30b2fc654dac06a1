"""Open Inference Protocol v2 over REST: the messages, decoding and validating an
inference request, and encoding the answer. No I/O here.

What a model takes and answers comes from its manifest (:class:`ModelIO`). A request
carries its rows in one of two forms:

- one input ``features`` (FP32 or FP64, shape ``[N, F]``, the manifest's feature order,
  data flat or nested row-major), offered only when every feature is a number;
- one input per feature, named as the feature, shape ``[N]`` or ``[N, 1]``: FP32, FP64
  or INT64 for a number, BYTES for a string (JSON: the data are strings; binary: each
  element a 4-byte little-endian length, then its UTF-8 bytes). Offered for every model.

A value must fit its feature: an ``int64`` feature takes whole numbers, a ``float32``
one numbers within FP32's range, a ``string`` one only BYTES; a request that does not
fit is a :class:`~rendezvous.gateway.errors.BadRequest` naming the feature. Should a
feature itself be named ``features``, the input of that name is that feature and the
``[N, F]`` form is not offered. Inputs may come as JSON data or in Triton's binary tensor
extension (``Inference-Header-Content-Length``: a JSON header, then each input's raw
little-endian bytes in order), which is what tritonclient sends by default. Answers are
always JSON: see :func:`~rendezvous.gateway.codec.response.response` for the outputs.

Decoding is bounded by the shapes, not by the body: the request is first read with every
tensor's ``data`` (and the shapes, parameters and outputs) left as raw JSON; each input's
name, datatype and shape are checked against the model and ``max_rows``, then each
``data`` is counted (commas outside strings, in C) before it is decoded. A body of 16 MiB
of ``0,`` under a ``[1, F]`` shape is refused without building a single float.

One module per step, in the order a request passes them:

- :mod:`~rendezvous.gateway.codec.binary_data`: the binary extension's JSON part and data
- :mod:`~rendezvous.gateway.codec.raw_request`: the JSON read with its large parts raw
- :mod:`~rendezvous.gateway.codec.heads`: every input's datatype and shape, the form
- :mod:`~rendezvous.gateway.codec.tensors`: every input's values, from
  :mod:`~rendezvous.gateway.codec.json_data` or :mod:`~rendezvous.gateway.codec.binary_data`
- :mod:`~rendezvous.gateway.codec.rows`: the rows, each value checked against its feature
- :mod:`~rendezvous.gateway.codec.request`: :func:`decode_request`, which runs the steps
- :mod:`~rendezvous.gateway.codec.response`: the answer
- :mod:`~rendezvous.gateway.codec.deadline`: the request's deadline

beside :mod:`~rendezvous.gateway.codec.messages` (the OIP messages),
:mod:`~rendezvous.gateway.codec.model_io` (what a model takes and answers) and
:mod:`~rendezvous.gateway.codec.datatypes`.
"""

from rendezvous.gateway.codec.binary_data import BINARY_HEADER
from rendezvous.gateway.codec.datatypes import DATATYPES, FEATURE_DATATYPES, NUMERIC_DATATYPES
from rendezvous.gateway.codec.deadline import choose_deadline, parse_deadline_header
from rendezvous.gateway.codec.messages import (
    ErrorBody,
    InferCall,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    RequestInput,
    RequestOutput,
    ResponseOutput,
    ServerMetadata,
    TensorMetadata,
    encode,
)
from rendezvous.gateway.codec.model_io import (
    FEATURES_INPUT,
    OUTPUTS,
    PROBABILITIES_OUTPUT,
    ModelIO,
)
from rendezvous.gateway.codec.request import ROW_SUFFIX_LENGTH, decode_request
from rendezvous.gateway.codec.response import NO_LABEL, response

__all__ = [
    "BINARY_HEADER",
    "DATATYPES",
    "FEATURES_INPUT",
    "FEATURE_DATATYPES",
    "NO_LABEL",
    "NUMERIC_DATATYPES",
    "OUTPUTS",
    "PROBABILITIES_OUTPUT",
    "ROW_SUFFIX_LENGTH",
    "ErrorBody",
    "InferCall",
    "InferenceRequest",
    "InferenceResponse",
    "ModelIO",
    "ModelMetadata",
    "RequestInput",
    "RequestOutput",
    "ResponseOutput",
    "ServerMetadata",
    "TensorMetadata",
    "choose_deadline",
    "decode_request",
    "encode",
    "parse_deadline_header",
    "response",
]
