"""The rendezvous itself: a mailbox per request, the policy, a decision on arrival or deadline.

Pure Python with an injected clock; nothing here knows about Kafka or Redis.
"""

from rendezvous.core.errors import CoreError, PolicyError
from rendezvous.core.latency import LiveLatency
from rendezvous.core.mailbox import Outcome
from rendezvous.core.offsets import OffsetTracker
from rendezvous.core.policy import CompiledPolicy, judge
from rendezvous.core.rendezvous import Clock, Rendezvous, Stats
from rendezvous.core.scales import ScaleMap, Scales

__all__ = [
    "Clock",
    "CompiledPolicy",
    "CoreError",
    "LiveLatency",
    "OffsetTracker",
    "Outcome",
    "PolicyError",
    "Rendezvous",
    "ScaleMap",
    "Scales",
    "Stats",
    "judge",
]
