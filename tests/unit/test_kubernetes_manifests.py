"""deploy/kubernetes, checked offline: every overlay renders with kustomize; the Kubernetes
objects pass ``kubernetes-validate --strict`` against a pinned Kubernetes version; the KEDA
objects pass jsonschema against KEDA's CRD schemas (vendored); and every command, flag,
port, env name and consumer group the manifests use exists in the CLI and settings, so a
renamed flag breaks this test, not a cluster."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import click
import jsonschema
import kubernetes_validate
import pytest
import yaml

from rendezvous.cli import main
from rendezvous.settings import Settings
from rendezvous.settings.sources import PLAIN_ENV
from rendezvous.transport.topics import load_specs
from tests.kustomize import render

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
OVERLAYS = sorted(p.parent.name for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
KUBERNETES_VERSION = "1.32.0"
"""The Kubernetes version the objects are validated against (kubernetes-validate's schemas)."""
KEDA_SCHEMAS = DEPLOY / "schemas" / "keda"
NOT_SETTINGS = {"POD_NAME", "HOME", "PYTHONUNBUFFERED"}
"""Env names the manifests set that are not rendezvous settings (the pod's name, for
``$(POD_NAME)``; a writable home; Python's own)."""
METRICS_PORT = 9100


@functools.cache
def rendered(overlay: str) -> tuple[dict, ...]:
    return tuple(render(DEPLOY / "overlays" / overlay))


def keda(doc: dict) -> bool:
    return str(doc["apiVersion"]).startswith("keda.sh/")


def containers(docs: tuple[dict, ...]) -> list[tuple[str, dict]]:
    """(workload name, container) of every pod template."""
    found = []
    for doc in docs:
        spec = doc.get("spec", {})
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get(
            "template")
        if template:
            found += [(doc["metadata"]["name"], c) for c in template["spec"]["containers"]]
    return found


def test_there_are_dev_and_prod_overlays() -> None:
    assert {"dev", "prod"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_objects_pass_strict_validation(overlay: str) -> None:
    native = [d for d in rendered(overlay) if not keda(d)]
    assert {d["kind"] for d in native} >= {"Deployment", "StatefulSet", "Service", "ConfigMap",
                                          "PodDisruptionBudget", "Job"}
    for doc in native:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@functools.cache
def keda_schema(kind: str) -> dict:
    """The v1alpha1 schema of KEDA's CRD for ``kind``, strict: an object that lists its
    properties takes no others (what the API server's pruning would silently drop)."""
    for path in KEDA_SCHEMAS.glob("*.yaml"):
        crd = next(d for d in yaml.safe_load_all(path.read_text()) if d)
        if crd["spec"]["names"]["kind"] == kind:
            version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
            return _closed(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    raise AssertionError(f"no vendored KEDA CRD for {kind} in {KEDA_SCHEMAS}")


def _closed(schema: Any) -> Any:
    if isinstance(schema, dict):
        for value in schema.values():
            _closed(value)
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        for value in schema:
            _closed(value)
    return schema


def validate_keda(doc: dict) -> None:
    jsonschema.validate(doc, keda_schema(doc["kind"]))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_objects_pass_the_keda_crd_schema(overlay: str) -> None:
    for doc in rendered(overlay):
        if keda(doc):
            validate_keda(doc)


def test_a_broken_deployment_fails_validation() -> None:
    deployment = next(d for d in rendered("prod") if d["kind"] == "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["argz"] = ["worker"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_a_broken_scaled_object_fails_validation() -> None:
    scaled = next(d for d in rendered("prod") if d["kind"] == "ScaledObject")
    broken = copy.deepcopy(scaled)
    broken["spec"]["maxReplicas"] = broken["spec"].pop("maxReplicaCount")  # the HPA's name
    with pytest.raises(jsonschema.ValidationError):
        validate_keda(broken)


def command_of(args: list[str]) -> tuple[click.Command, list[str]]:
    """The click command ``rendezvous <args>`` runs (through groups such as ``topics``),
    and the arguments left for it."""
    command: click.Command = main
    rest = list(args)
    while isinstance(command, click.Group):
        word = rest.pop(0)
        found = command.get_command(click.Context(main), word)
        assert found is not None, f"`rendezvous {' '.join(args)}`: no command {word!r}"
        command = found
    return command, rest


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_commands_and_flags_exist_in_the_cli(overlay: str) -> None:
    for name, container in containers(rendered(overlay)):
        command, rest = command_of(container["args"])
        flags = {opt for p in command.params for opt in [*p.opts, *p.secondary_opts]}
        unknown = [a for a in rest if a.startswith("--") and a not in flags]
        assert not unknown, f"{name}: `rendezvous {command.name}` has no {unknown}"
        command.make_context(str(command.name), rest)  # the values parse too


def env_names(docs: tuple[dict, ...]) -> set[str]:
    names = set()
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            names |= set(doc.get("data", {}))
    for _, container in containers(docs):
        names |= {e["name"] for e in container.get("env", [])}
    return names


def setting_exists(name: str) -> bool:
    """Whether ``name`` is an environment name :class:`Settings` reads."""
    if name in PLAIN_ENV:  # KAFKA_BOOTSTRAP_SERVERS, REDIS_URL
        return True
    if not name.startswith("RENDEZVOUS_"):
        return False
    path = name.removeprefix("RENDEZVOUS_").lower().split("__")
    model: Any = Settings
    for part in path:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return False
        model = field.annotation
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_env_names_are_settings(overlay: str) -> None:
    unknown = sorted(n for n in env_names(rendered(overlay)) - NOT_SETTINGS
                     if not setting_exists(n))
    assert not unknown, f"not settings of rendezvous: {unknown}"


def test_a_renamed_setting_would_be_caught() -> None:
    assert setting_exists("RENDEZVOUS_SERVE__EXACTLY_ONCE")
    assert setting_exists("KAFKA_BOOTSTRAP_SERVERS")
    assert not setting_exists("RENDEZVOUS_SERVE__EXACTLY_TWICE")
    assert not setting_exists("RENDEZVOUS_NO_SUCH_THING")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_and_probes_match_the_commands(overlay: str) -> None:
    for name, container in containers(rendered(overlay)):
        args = container["args"]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        if "--metrics-port" in args:
            assert int(args[args.index("--metrics-port") + 1]) == ports["metrics"] == \
                METRICS_PORT, name
        if args[0] == "gateway":
            assert int(args[args.index("--port") + 1]) == ports["http"], name
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["port"] in ports, f"{name} {probe}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaled_objects_watch_the_groups_the_components_use(overlay: str) -> None:
    docs = rendered(overlay)
    settings_map = next(d for d in docs if d["kind"] == "ConfigMap"
                        and d["metadata"]["name"].startswith("rendezvous-settings"))
    s = Settings(topic_prefix=settings_map["data"]["RENDEZVOUS_TOPIC_PREFIX"])
    partitions = load_specs(s)["input"].partitions
    by_name = dict(containers(docs))
    for doc in docs:
        if doc["kind"] != "ScaledObject":
            continue
        target = by_name[doc["spec"]["scaleTargetRef"]["name"]]
        args = target["args"]
        group = (f"worker-{args[args.index('--model') + 1]}" if args[0] == "worker"
                 else {"serve": "rendezvous", "decoy": "decoy"}[args[0]])
        trigger = doc["spec"]["triggers"][0]["metadata"]
        assert trigger["consumerGroup"] == s.group(group)
        assert trigger["topic"] == s.topic("input")
        assert trigger["limitToPartitionsWithLag"] == "true"
        assert doc["spec"]["maxReplicaCount"] <= max(partitions, _planned_partitions(overlay))


def _planned_partitions(overlay: str) -> int:
    """The partition count an overlay written by `rendezvous plan` names in its header."""
    text = (DEPLOY / "overlays" / overlay / "kustomization.yaml").read_text()
    found = re.search(r"Topics: (\d+) partitions", text)
    return int(found.group(1)) if found else 0


def test_serve_and_decoy_take_their_instance_id_from_the_pod_name() -> None:
    docs = rendered("prod")
    for name in ("rendezvous-serve", "rendezvous-decoy"):
        workload = next(d for d in docs if d["metadata"]["name"] == name
                        and d["kind"] in ("StatefulSet", "Deployment"))
        assert workload["kind"] == "StatefulSet"
        args = workload["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--instance-id") + 1] == "$(POD_NAME)"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmap_values_are_valid_settings(overlay: str, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no project rendezvous.toml on top
    for doc in rendered(overlay):
        if doc["kind"] == "ConfigMap":
            for name, value in doc.get("data", {}).items():
                monkeypatch.setenv(name, value)
    s = Settings()
    assert s.metrics_host == "0.0.0.0"
