"""``rendezvous plan``: how many partitions, pods and brokers a request rate needs, and what
they cost, worked out from measured CPU and memory per component.

- :mod:`~rendezvous.plan.costs`: the costs file (``bench/bench_cost.py`` writes it; one
  ships with the package) and its values at a rate, interpolated or extrapolated.
- :mod:`~rendezvous.plan.capacity`: the plan itself, pure arithmetic; refuses what it
  cannot keep.
- :mod:`~rendezvous.plan.render`: the plan as text, or as a kustomize overlay.
"""
