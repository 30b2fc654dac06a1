"""The gateway's core, independent of HTTP: metadata, readiness, and one inference
call = one input event per row with this process's return address, answered
by the deadline plus the slack.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from importlib import metadata as package_metadata
from typing import Any

import redis.asyncio as aioredis

from rendezvous.gateway.codec import (
    FEATURE_DATATYPES,
    FEATURES_INPUT,
    PROBABILITIES_OUTPUT,
    InferCall,
    InferenceResponse,
    ModelIO,
    ModelMetadata,
    ServerMetadata,
    TensorMetadata,
    response,
)
from rendezvous.gateway.errors import BadRequest, Unavailable
from rendezvous.gateway.metrics import PENDING, REQUEST_SECONDS, ROWS, TIMEOUTS_AT_GATEWAY
from rendezvous.gateway.pending import Pending, ReplyListener, wait_for_rows
from rendezvous.gateway.upstream import Upstream
from rendezvous.messages import InputEvent, Scored
from rendezvous.model import Manifest, load_manifest, resolve_model
from rendezvous.replyto import new_return_address
from rendezvous.settings import Settings

RECOVER_S = 0.005
"""Longest wait for the kept copies of missing rows after a reconnect of the listener."""


class Gateway:
    """What every HTTP route calls; owns the producer, the reply listener and their table."""

    def __init__(self, settings: Settings, manifest: Manifest, upstream: Upstream,
                 listener: ReplyListener, pending: Pending) -> None:
        self.settings = settings
        self.config = settings.gateway
        self.manifest = manifest
        self.feature_names = manifest.feature_names
        self.io = ModelIO.from_manifest(manifest)
        """What the model takes and answers: requests are decoded and answered with it."""
        self._upstream = upstream
        self._listener = listener
        self._pending = pending

    @classmethod
    def create(cls, settings: Settings) -> Gateway:
        """A gateway for ``settings``; nothing is connected before :meth:`start`."""
        manifest = load_manifest(resolve_model(settings.models_dir,
                                               settings.gateway.features_from))
        password = settings.redis.password.get_secret_value() if settings.redis.password else None
        client = aioredis.Redis.from_url(settings.redis_url(), username=settings.redis.username,
                                         password=password)
        pending = Pending()
        channel = new_return_address(settings.topic_prefix, "gateway")
        return cls(settings, manifest, Upstream(settings), ReplyListener(client, channel, pending),
                   pending)

    async def start(self) -> None:
        """Connect in the background: the HTTP server listens at once (live), and
        :meth:`not_ready` says what is still missing (ready)."""
        self._listener.start()
        self._upstream.start()

    async def stop(self) -> None:
        await self._listener.stop()
        await asyncio.to_thread(self._upstream.close)

    @property
    def reply_to(self) -> str:
        return self._listener.channel

    def not_ready(self) -> str | None:
        """Why the gateway cannot take requests now, or None when it can."""
        if not self._upstream.kafka_up:
            return "Kafka is not reachable"
        if not self._listener.connected.is_set():
            return "Redis is not reachable"
        return None

    @property
    def default_deadline_ms(self) -> float:
        return self._upstream.deadline_ms

    def check_model(self, name: str, version: str | None) -> None:
        """:class:`BadRequest` unless ``name`` (and ``version``) is this deployment."""
        if name != self.config.model_name:
            raise BadRequest(f"unknown model {name!r}; this gateway serves "
                             f"{self.config.model_name!r}")
        if version is not None and version != self.manifest.version:
            raise BadRequest(f"unknown version {version!r} of {name!r}; "
                             f"versions: [{self.manifest.version!r}]")

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata("rendezvous", _package_version(), [])

    def model_metadata(self) -> ModelMetadata:
        """The live manifest's inputs and outputs: ``features`` ``[-1, F]`` when every
        feature is a number, then one ``[-1]`` input per feature (BYTES for a string);
        ``probabilities`` ``[-1, K]`` for a multiclass model. Parameters: the feature
        names and datatypes, the task, the classes (a JSON array; classifiers), and the
        manifest they come from. No training statistics."""
        io = self.io
        inputs = [TensorMetadata(FEATURES_INPUT, "FP32", [-1, len(io.names)])] if io.matrix else []
        inputs += [TensorMetadata(name, FEATURE_DATATYPES[dtype], [-1])
                   for name, dtype in zip(io.names, io.dtypes, strict=True)]
        shapes = {PROBABILITIES_OUTPUT: [-1, len(io.classes)]}
        datatypes = {"score": io.score_datatype, "label": io.label_datatype or "INT64",
                     "status": "BYTES", "model": "BYTES", PROBABILITIES_OUTPUT: "FP32"}
        parameters = {
            "feature_names": ",".join(io.names),
            "feature_dtypes": ",".join(FEATURE_DATATYPES[dtype] for dtype in io.dtypes),
            "task": io.task,
            "features_from": f"{self.manifest.name}:{self.manifest.version}",
        }
        if self.manifest.is_classifier:
            parameters["classes"] = io.classes_text()
        return ModelMetadata(
            name=self.config.model_name,
            versions=[self.manifest.version],
            platform="rendezvous",
            inputs=inputs,
            outputs=[TensorMetadata(name, datatypes[name], shapes.get(name, [-1]))
                     for name in io.outputs],
            parameters=parameters,
        )

    def example_request(self) -> dict[str, Any]:
        """A valid one-row request with neutral values: 0.0 for a number (0 for an
        integer), a string feature's first category (else ""). Never the training
        reference: medians and other statistics of the training data are not published."""
        io = self.io
        categories = {f.name: f.categories for f in self.manifest.features}
        values: list[float | str] = [
            (categories[name] or [""])[0] if dtype == "string" else 0 if dtype == "int64"
            else 0.0 for name, dtype in zip(io.names, io.dtypes, strict=True)]
        if io.matrix:
            inputs = [{"name": FEATURES_INPUT, "datatype": "FP32", "shape": [1, len(values)],
                       "data": values}]
        else:
            inputs = [{"name": name, "datatype": FEATURE_DATATYPES[dtype], "shape": [1],
                       "data": [value]}
                      for name, dtype, value in zip(io.names, io.dtypes, values, strict=True)]
        return {"id": "example-1", "parameters": {"timeout": 50_000}, "inputs": inputs}

    async def infer(self, call: InferCall, deadline_ms: float) -> InferenceResponse:
        """Send every row into the pipeline and answer by ``deadline_ms`` + the slack."""
        reason = self.not_ready()
        if reason:
            raise Unavailable(reason)
        started = time.monotonic()
        ts = time.time() * 1000.0
        base = pipeline_id(call.id)
        ids = [f"{base}.{i}" for i in range(len(call.rows))]
        waiter = self._pending.add(ids)
        epoch = self._listener.epoch
        PENDING.inc(len(ids))
        try:
            self._upstream.send([
                InputEvent(id=rid, features=row, deadline_ms=deadline_ms, reply_to=self.reply_to,
                           ts=ts, progressive=call.progressive)
                for rid, row in zip(ids, call.rows, strict=True)])
            await wait_for_rows(waiter, started + (deadline_ms + self.config.slack_ms) / 1000.0)
            if waiter.missing and self._listener.epoch != epoch:
                await self._listener.recover(waiter, RECOVER_S)
        finally:
            self._pending.discard(waiter)
            PENDING.dec(len(ids))
        elapsed_ms = (time.monotonic() - started) * 1000.0
        results = [waiter.results.get(rid) or _gateway_timeout(rid, elapsed_ms) for rid in ids]
        for result in results:
            ROWS.labels(result.status).inc()
        TIMEOUTS_AT_GATEWAY.inc(len(ids) - len(waiter.results))
        REQUEST_SECONDS.observe(elapsed_ms / 1000.0)
        versions = sorted({f"{r.model}:{r.version}" for r in results if r.model})
        parameters: dict[str, str | float | bool] = {
            "deadline_ms": deadline_ms,
            "gateway_ms": round(elapsed_ms, 3),
            "latency_ms": round(max(r.latency_ms for r in results), 3),
            "versions": ",".join(versions),
            "timeouts_at_gateway": len(ids) - len(waiter.results),
            "rendezvous_id": base,
        }
        return response(self.config.model_name, self.manifest.version, call.id, results,
                         call.outputs, parameters, self.io)


ID_TOKEN_BYTES = 16
"""Random bytes of the token of each call's pipeline id: 128 bits."""


def pipeline_id(request_id: str | None) -> str:
    """The id the rows of one HTTP request carry in the pipeline (``<it>.<row>``): the
    caller's id plus a token of 128 random bits drawn for this call (32 hex digits).
    Callers reuse ids (counters restarting at 0, the same id on every call) and ``serve``
    drops a request whose id it has answered before, so the caller's id alone would turn
    a repeat into a ``timeout``; and the id is returned to the caller (``rendezvous_id``),
    so whoever may write ``input`` must not be able to guess the next one and answer it
    first (a per-process token and a counter could be: issue 31). ``secrets.token_hex``
    costs ~1 us a call."""
    token = secrets.token_hex(ID_TOKEN_BYTES)
    return f"{request_id}.{token}" if request_id else token


def _gateway_timeout(request_id: str, elapsed_ms: float) -> Scored:
    return Scored(request_id, "timeout", latency_ms=elapsed_ms,
                  reason="no result reached the gateway by the deadline")


def _package_version() -> str:
    try:
        return package_metadata.version("rendezvous")
    except package_metadata.PackageNotFoundError:
        return "0"
