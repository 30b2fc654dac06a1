"""The plan for people (text) and for kustomize (an overlay of the base in
``deploy/kubernetes/base``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import yaml

from rendezvous.plan.capacity import CO_PARTITIONED, Plan

WORKLOADS = {"serve": "rendezvous-serve", "decoy": "rendezvous-decoy",
             "monitor": "rendezvous-monitor", "gateway": "rendezvous-gateway"}
"""Plan component -> the base's workload; ``worker/<m>`` -> ``rendezvous-worker-<m>``."""
SCALED_BY_KEDA = ("serve", "decoy")
"""Besides the workers: the components whose ScaledObject the overlay bounds."""


def workload(component: str) -> str | None:
    """The base's workload of a plan component; None for what the base does not run
    (the brokers and Redis are provisioned apart)."""
    if component.startswith("worker/"):
        return "rendezvous-worker-" + component.split("/", 1)[1]
    return WORKLOADS.get(component)


def as_text(plan: Plan, measured_on: str, source: str) -> str:
    o = plan.options
    lines = [f"Plan for {o.rate:g} requests/s, deadline {o.deadline_ms:g} ms",
             f"  costs: {source} (measured on: {measured_on})",
             f"  target CPU utilization {o.utilization:.0%}; memory = RSS + "
             f"{o.memory_headroom:.0%}", "",
             f"{'component':<22}{'replicas':>9}{'cpu/pod':>9}{'mem/pod':>9}"
             f"{'busy cores':>12}{'headroom':>10}"]
    for p in plan.pods:
        mark = "  (extrapolated)" if p.extrapolated else ""
        lines.append(f"{p.component:<22}{p.replicas:>9}{p.cpu_milli:>8}m{p.memory_mib:>6}Mi"
                     f"{p.busy_cores:>12.3f}{p.headroom:>10.0%}{mark}")
    lines += ["", f"partitions of {', '.join(CO_PARTITIONED)}: "
              f"{plan.partitions} (the busiest consumer group needs {plan.partitions_needed}; "
              "autoscalers are capped there)",
              f"brokers: {plan.get('broker').replicas} (replication factor "
              f"{o.replication_factor}, {o.broker_vcpu:g} vCPU each)",
              f"total CPU requested: {plan.total_vcpu:.2f} vCPU"]
    price = plan.price_per_million
    if price is None:
        lines.append("price per million requests: give --vcpu-hour-price P (your provider's "
                     "price of one vCPU-hour) to see it")
    else:
        lines.append(f"price per million requests: {plan.total_vcpu:.2f} vCPU × "
                     f"{o.vcpu_hour_price:g}/vCPU-hour × 1e6 / (3600 × {o.rate:g}/s) = "
                     f"{price:.4f} (CPU only, at the price you gave)")
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines) + "\n"


def as_kustomize(plan: Plan, measured_on: str, base: str = "../../base",
                 autoscaling: str = "../../components/autoscaling") -> str:
    """A ``kustomization.yaml`` over ``base`` with the ``autoscaling`` component: replicas,
    resources, and the autoscalers' bounds (KEDA never above the partition count)."""
    patches: list[dict] = []
    replicas: list[dict] = []
    for p in plan.pods:
        name = workload(p.component)
        if name is None:
            continue
        kind = "StatefulSet" if p.component in ("serve", "decoy") else "Deployment"
        resources = {"requests": {"cpu": f"{p.cpu_milli}m", "memory": f"{p.memory_mib}Mi"},
                     "limits": {"memory": f"{p.memory_mib}Mi"}}
        patches.append(_patch(kind, name, [
            {"op": "replace", "path": "/spec/template/spec/containers/0/resources",
             "value": resources}]))
        replicas.append({"name": name, "count": p.replicas})
        if p.component.startswith("worker/") or p.component in SCALED_BY_KEDA:
            patches.append(_patch("ScaledObject", name, [
                {"op": "replace", "path": "/spec/minReplicaCount", "value": p.replicas},
                {"op": "replace", "path": "/spec/maxReplicaCount", "value": plan.partitions}]))
        elif p.component == "gateway":
            patches.append(_patch("HorizontalPodAutoscaler", name, [
                {"op": "replace", "path": "/spec/minReplicas", "value": p.replicas},
                {"op": "replace", "path": "/spec/maxReplicas", "value": 2 * p.replicas}]))
    o = plan.options
    doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
           "namespace": "rendezvous",
           # The image built from this version's Dockerfile; point newName at your registry.
           "images": [{"name": "rendezvous", "newName": "rendezvous", "newTag": _version()}],
           "resources": [base], "components": [autoscaling], "replicas": replicas,
           "patches": patches}
    head = (f"# Written by `rendezvous plan --rate {o.rate:g} --deadline-ms {o.deadline_ms:g} "
            "--format kustomize`\n"
            f"# from costs measured on: {measured_on}\n"
            f"# Topics: {plan.partitions} partitions on {', '.join(CO_PARTITIONED)}; "
            f"brokers: {plan.get('broker').replicas}; Redis: one. Provision those apart.\n")
    if plan.extrapolated:
        head += "# EXTRAPOLATED beyond the rates measured: measure at this rate first.\n"
    return head + yaml.dump(doc, Dumper=_Dumper, sort_keys=False)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the patches) as ``|`` blocks, readable in the overlay."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _version() -> str:
    try:
        return version("rendezvous")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "latest"


def _patch(kind: str, name: str, ops: list[dict]) -> dict:
    return {"target": {"kind": kind, "name": name},
            "patch": yaml.safe_dump(ops, sort_keys=False)}
