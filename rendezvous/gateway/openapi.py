"""The OpenAPI 3.1 document of the gateway, built from the codec's message types."""

from __future__ import annotations

from typing import Any

import msgspec

from rendezvous.gateway.codec import (
    ErrorBody,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
)

REF = "#/components/schemas/{name}"


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(name=schema)}}}


def _answers(ok: str | None, *errors: int) -> dict[str, Any]:
    ok_answer: dict[str, Any] = {"description": "OK"}
    if ok:
        ok_answer["content"] = _json(ok)
    answers = {"200": ok_answer}
    why = {400: "bad request, unknown model or version", 401: "missing or wrong API key",
           503: "Kafka or Redis unreachable"}
    for status in errors:
        answers[str(status)] = {"description": why[status], "content": _json("ErrorBody")}
    return answers


def document(title: str, version: str, secured: bool, model: tuple[str, str],
             example: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenAPI document; ``secured`` adds the bearer scheme to the model routes,
    ``model`` (name, version) and ``example`` (a valid inference request) are the
    examples shown (and sent first by property-based runs)."""
    _, components = msgspec.json.schema_components(
        [InferenceRequest, InferenceResponse, ModelMetadata, ServerMetadata, ErrorBody],
        ref_template=REF)
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
        return {
            "": {"get": {"summary": "Model metadata", "parameters": params,
                         "security": security, "responses": _answers("ModelMetadata", *guarded)}},
            "/ready": {"get": {"summary": "Model ready", "parameters": params,
                               "security": security, "responses": _answers(None, *guarded)}},
            "/infer": {"post": {
                "summary": "Inference: one request into the pipeline per row, answered by "
                           "the deadline",
                "parameters": [*params, deadline], "security": security,
                "requestBody": {"required": True, "content": request_body},
                "responses": _answers("InferenceResponse", *guarded)}},
        }

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
