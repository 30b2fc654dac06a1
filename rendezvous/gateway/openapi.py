"""The OpenAPI 3.1 document of the gateway, built from the codec's message types and
the live model's metadata (its inputs and outputs, from the manifest the gateway reads).

When API keys are set, ``/openapi.json`` itself needs one, like every route but the
health probes. Nothing of the training reference is published here (no medians,
quantiles or category frequencies): the example request uses neutral values, 0.0 for a
number and a string feature's first category
(:meth:`~rendezvous.gateway.service.Gateway.example_request`)."""

from __future__ import annotations

from typing import Any

import msgspec

from rendezvous.gateway.codec import (
    DATATYPES,
    FEATURES_INPUT,
    ErrorBody,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
    TensorMetadata,
)

REF = "#/components/schemas/{name}"


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(name=schema)}}}


def _answers(ok: str | None, *errors: int, example: Any = None) -> dict[str, Any]:
    ok_answer: dict[str, Any] = {"description": "OK"}
    if ok:
        ok_answer["content"] = _json(ok)
        if example is not None:
            ok_answer["content"]["application/json"]["example"] = example
    answers = {"200": ok_answer}
    why = {400: "bad request, unknown model or version", 401: "missing or wrong API key",
           415: "a Content-Type other than application/json or application/octet-stream",
           503: "Kafka or Redis unreachable, or the gateway busy: retry after Retry-After "
                "seconds"}
    for status in errors:
        answers[str(status)] = {"description": why[status], "content": _json("ErrorBody")}
    return answers


def _tensors(tensors: list[TensorMetadata]) -> str:
    return ", ".join(f"`{t.name}` {t.datatype} {t.shape}" for t in tensors)


def _model_description(metadata: ModelMetadata) -> str:
    """The model's inputs and outputs in words, for the inference route."""
    parameters = metadata.parameters
    matrix = any(t.name == FEATURES_INPUT and len(t.shape) == 2 for t in metadata.inputs)
    per_feature = [t for t in metadata.inputs if not (t.name == FEATURES_INPUT and matrix)]
    forms = ("Give the rows either as `features` FP32 (or FP64) `[N, F]` in the order of "
             "`feature_names`, or as one input per feature." if matrix else
             "Give one input per feature (this model's features are not all numbers).")
    lines = [
        f"Model `{metadata.name}` ({parameters.get('task', 'binary')}, features from "
        f"`{parameters.get('features_from', '?')}`). One event into the pipeline per row, "
        "answered by the deadline.",
        "",
        f"{forms} A feature's input has shape `[N]` or `[N, 1]`: FP32, FP64 or INT64 for "
        "a number, BYTES (strings) for a string; a value that does not fit its feature "
        "is answered 400, naming the feature.",
        "",
        f"Per-feature inputs: {_tensors(per_feature)}.",
        "",
        f"Outputs: {_tensors(metadata.outputs)}.",
    ]
    if "classes" in parameters:
        lines += ["", f"Classes (the columns of `probabilities`, when given): "
                      f"`{parameters['classes']}`."]
    return "\n".join(lines)


def document(title: str, version: str, secured: bool, model: tuple[str, str],
             example: dict[str, Any] | None = None,
             metadata: ModelMetadata | None = None) -> dict[str, Any]:
    """The OpenAPI document; ``secured`` adds the bearer scheme to the model routes,
    ``model`` (name, version) and ``example`` (a valid inference request) are the
    examples shown (and sent first by property-based runs). ``metadata`` (the live
    model's, :meth:`~rendezvous.gateway.service.Gateway.model_metadata`) describes the
    inference route, names the inputs and outputs the schemas accept and is the
    example answer of the metadata route."""
    _, components = msgspec.json.schema_components(
        [InferenceRequest, InferenceResponse, ModelMetadata, ServerMetadata, ErrorBody],
        ref_template=REF)
    components["RequestInput"]["properties"]["datatype"]["enum"] = list(DATATYPES)
    infer_description = None
    metadata_example = None
    if metadata is not None:
        components["RequestInput"]["properties"]["name"]["enum"] = [
            t.name for t in metadata.inputs]
        outputs = [t.name for t in metadata.outputs]
        components["RequestOutput"]["properties"]["name"]["enum"] = outputs
        components["ResponseOutput"]["properties"]["name"]["enum"] = outputs
        infer_description = _model_description(metadata)
        metadata_example = msgspec.to_builtins(metadata)
    name = {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"},
            "example": model[0]}
    version_param = {"name": "model_version", "in": "path", "required": True,
                     "schema": {"type": "string"}, "example": model[1]}
    deadline = {"name": "X-Deadline-Ms", "in": "header", "required": False,
                "description": "Deadline in milliseconds (the tighter of this and "
                               "parameters.timeout applies; default: the live policy's)",
                "schema": {"type": "number", "exclusiveMinimum": 0}}
    auth = 401 if secured else None
    guarded = [s for s in (400, auth, 503) if s]
    security: list[dict[str, list[str]]] = [{"bearer": []}] if secured else []

    request_body = _json("InferenceRequest")
    if example is not None:
        request_body["application/json"]["examples"] = {"one row": {"value": example}}

    def model_routes(params: list[dict[str, Any]]) -> dict[str, Any]:
        routes: dict[str, Any] = {
            "": {"get": {"summary": "Model metadata", "parameters": params,
                         "security": security,
                         "responses": _answers("ModelMetadata", *guarded,
                                               example=metadata_example)}},
            "/ready": {"get": {"summary": "Model ready", "parameters": params,
                               "security": security, "responses": _answers(None, *guarded)}},
            "/infer": {"post": {
                "summary": "Inference: one request into the pipeline per row, answered by "
                           "the deadline",
                "parameters": [*params, deadline], "security": security,
                "requestBody": {"required": True, "content": request_body},
                "responses": _answers("InferenceResponse", *sorted([*guarded, 415]))}},
        }
        if infer_description is not None:
            routes["/infer"]["post"]["description"] = infer_description
        return routes

    paths: dict[str, Any] = {
        "/v2/health/live": {"get": {"summary": "Live", "responses": _answers(None)}},
        "/v2/health/ready": {"get": {"summary": "Ready (Kafka and Redis reachable)",
                                     "responses": _answers(None, 503)}},
        "/v2": {"get": {"summary": "Server metadata", "security": security,
                        "responses": _answers("ServerMetadata", *([auth] if auth else []))}},
    }
    for suffix, op in model_routes([name]).items():
        paths[f"/v2/models/{{model_name}}{suffix}"] = op
    for suffix, op in model_routes([name, version_param]).items():
        paths[f"/v2/models/{{model_name}}/versions/{{model_version}}{suffix}"] = op
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Open Inference Protocol v2 (REST) in front of the rendezvous "
                                "pipeline: every row is answered by its deadline."},
        "paths": paths,
        "components": {"schemas": components},
    }
    if secured:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return doc
