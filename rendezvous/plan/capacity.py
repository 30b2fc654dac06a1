"""The plan: replicas, pod requests, partitions and brokers for a request rate, from the
measured costs. Pure arithmetic, so a test can check it by hand.

The rules (each one printed with the plan):

- a component keeps ``cores = rate × cpu_s_per_1000 / 1000`` busy;
- a Python component is one process and uses at most one core, so it needs
  ``replicas = max(min_replicas, ceil(cores / (utilization × 1 core)))`` pods, and each pod
  requests ``cores / replicas / utilization`` (rounded up to 10 millicores, at least 50m);
  the rest of each request is headroom for bursts and a rebalance;
- workers, serve and the decoy each need a partition per replica: the co-partitioned
  topics need ``max`` of their replicas;
- the monitor and Redis are one process each: a rate that needs more than one core of
  either is refused;
- brokers: the measured broker CPU (one broker, replication factor 1) times the
  replication factor, over ``broker_vcpu`` cores each at ``utilization``, at least as
  many brokers as the replication factor;
- memory: the measured RSS plus ``memory_headroom``, rounded up to a whole MiB;
- a deadline shorter than the end-to-end p99 measured at the rate is refused: pods add
  throughput, not speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rendezvous.plan.costs import Costs
from rendezvous.plan.errors import PlanError

PARTITIONED = ("serve", "decoy")
"""Consumer groups scaled by partitions, besides one ``worker/<model>`` per model."""
CO_PARTITIONED = ("input", "scores", "scored", "decisions")


@dataclass(frozen=True)
class Options:
    """What the user asked for, and the rules' knobs."""

    rate: float
    models: tuple[str, ...]
    partitions_now: int
    """The co-partitioned topics' count in the topics file."""
    deadline_ms: float = 50.0
    partitions: int | None = None
    """A fixed partition count (topics that exist and will not be recreated)."""
    vcpu_hour_price: float | None = None
    utilization: float = 0.5
    memory_headroom: float = 0.25
    min_replicas: int = 2
    replication_factor: int = 3
    broker_vcpu: float = 2.0
    gateway: bool = True


@dataclass(frozen=True)
class Pods:
    """One component's part of the plan."""

    component: str
    replicas: int
    cpu_milli: int
    """CPU request of one pod, millicores."""
    memory_mib: int
    """Memory request (and limit) of one pod."""
    busy_cores: float
    """Cores the measured cost says the component keeps busy at the rate, in all."""
    extrapolated: bool

    @property
    def headroom(self) -> float:
        """The share of the requested CPU the measured load leaves free."""
        return 1.0 - self.busy_cores / (self.replicas * self.cpu_milli / 1000.0)


@dataclass(frozen=True)
class Plan:
    options: Options
    pods: list[Pods]
    partitions: int
    partitions_needed: int
    notes: list[str] = field(default_factory=list)

    @property
    def total_vcpu(self) -> float:
        return sum(p.replicas * p.cpu_milli for p in self.pods) / 1000.0

    @property
    def price_per_million(self) -> float | None:
        """``total_vcpu × price_per_vcpu_hour × 1e6 / (3600 × rate)``, when a price was given."""
        price = self.options.vcpu_hour_price
        if price is None:
            return None
        return self.total_vcpu * price * 1e6 / (3600.0 * self.options.rate)

    @property
    def extrapolated(self) -> bool:
        return any(p.extrapolated for p in self.pods)

    def get(self, component: str) -> Pods:
        return next(p for p in self.pods if p.component == component)


def make_plan(costs: Costs, options: Options) -> Plan:
    """The plan for ``options.rate``, or a :class:`PlanError` that says why it cannot be kept."""
    o = options
    if o.rate <= 0:
        raise PlanError("--rate must be above 0 requests/s")
    if not 0 < o.utilization <= 1:
        raise PlanError("--utilization must be within (0, 1]")
    notes: list[str] = []
    p99 = costs.p99_at(o.rate)
    if p99 is not None and p99 > o.deadline_ms:
        raise PlanError(f"the end-to-end p99 measured near {o.rate:g}/s was {p99:g} ms, over "
                        f"the {o.deadline_ms:g} ms deadline: more pods do not shorten the "
                        "hops; give requests a longer deadline, or measure again with "
                        "lower-latency settings")
    pods: list[Pods] = []
    scaled = [f"worker/{m}" for m in o.models] + list(PARTITIONED)
    for name in scaled:
        pods.append(_python(costs, _measured_name(costs, name, notes), name, o,
                            o.min_replicas))
    pods.append(_single(costs, "monitor", o, "lower its sampling (--sample) or run it on "
                        "fewer topics"))
    if o.gateway:
        pods.append(_python(costs, "gateway", "gateway", o, o.min_replicas))
    pods.append(_single(costs, "redis", o, "give each gateway its own Redis, or reply "
                        "through the scored topic"))
    pods.append(_brokers(costs, o))

    needed = max(p.replicas for p in pods if p.component in scaled)
    if o.partitions is not None:
        if needed > o.partitions:
            busiest = max((p for p in pods if p.component in scaled), key=lambda p: p.replicas)
            raise PlanError(
                f"{busiest.replicas} {busiest.component} instances are needed at {o.rate:g}/s "
                f"but the topics have {o.partitions} partitions: an instance beyond the "
                "partition count gets none and does no work. Recreate the co-partitioned "
                f"topics ({', '.join(CO_PARTITIONED)}) with at least {needed} partitions "
                "(leave out --partitions), or plan a lower rate")
        partitions = o.partitions
    else:
        partitions = max(o.partitions_now, needed)
    if partitions > o.partitions_now:
        notes.append(
            f"{o.rate:g}/s needs {partitions} partitions; the topics file has "
            f"{o.partitions_now}. The four co-partitioned topics ({', '.join(CO_PARTITIONED)}) "
            "must be recreated together with the new count (adding partitions to one moves "
            "keys and breaks co-partitioning): see docs/deploy.md, 'More partitions'")
    if any(p.extrapolated for p in pods):
        top = costs.rates[-1]
        notes.append(f"EXTRAPOLATED: {o.rate:g}/s is above the highest rate measured "
                     f"({top:g}/s); the cost per request there is assumed to stay what it "
                     "was at that rate. Measure at this rate before relying on it")
    return Plan(options=o, pods=pods, partitions=partitions, partitions_needed=needed,
                notes=notes)


def _measured_name(costs: Costs, name: str, notes: list[str]) -> str:
    """The costs entry for ``name``; a model never measured is costed as the dearest worker."""
    if name in costs.table or not name.startswith("worker/"):
        return name
    workers = [c for c in costs.table if c.startswith("worker/")]
    if not workers:
        return name  # costs.at says what is missing
    dearest = max(workers, key=lambda c: costs.table[c][-1].cpu_s_per_1000)
    notes.append(f"{name} was not measured: costed as {dearest}, the dearest worker measured "
                 "(run the cost benchmark with --models-dir to measure it)")
    return dearest


def _python(costs: Costs, measured: str, name: str, o: Options, min_replicas: int) -> Pods:
    cost = costs.at(measured, o.rate)
    cores = cost.cores(o.rate)
    replicas = max(min_replicas, math.ceil(cores / o.utilization - 1e-9))
    milli = _cpu_milli(cores / replicas / o.utilization)
    return Pods(name, replicas, milli, _memory(cost.rss_mib, o), cores, cost.extrapolated)


def _single(costs: Costs, name: str, o: Options, instead: str) -> Pods:
    cost = costs.at(name, o.rate)
    cores = cost.cores(o.rate)
    if cores / o.utilization > 1.0:
        raise PlanError(f"the {name} is one process and would need {cores:.2f} cores at "
                        f"{o.rate:g}/s, over one core at {o.utilization:.0%} utilization: "
                        f"{instead}")
    return Pods(name, 1, _cpu_milli(cores / o.utilization), _memory(cost.rss_mib, o), cores,
                cost.extrapolated)


def _brokers(costs: Costs, o: Options) -> Pods:
    cost = costs.at("broker", o.rate)
    cores = cost.cores(o.rate) * o.replication_factor
    brokers = max(o.replication_factor, math.ceil(cores / (o.utilization * o.broker_vcpu) - 1e-9))
    return Pods("broker", brokers, _cpu_milli(cores / brokers / o.utilization),
                _memory(cost.rss_mib, o), cores, cost.extrapolated)


def _cpu_milli(cores: float) -> int:
    """Millicores, rounded up to 10m, at least 50m."""
    return max(50, math.ceil(cores * 100 - 1e-9) * 10)


def _memory(rss_mib: float, o: Options) -> int:
    return math.ceil(rss_mib * (1 + o.memory_headroom) - 1e-9)
