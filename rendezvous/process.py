"""Process-wide settings a component applies to itself at start."""

from __future__ import annotations

import gc
import logging
import os
import time
from pathlib import Path

from prometheus_client import Histogram

log = logging.getLogger(__name__)


def yield_cpu(niceness: int) -> None:
    """Lower this process's CPU priority by ``niceness`` (off-path components).

    On a small machine the decoy and the monitor compete with the workers and
    serve for the same cores; niced, they get what the hot path leaves and
    catch up when it is idle, instead of delaying answers.
    """
    if niceness <= 0:
        return
    try:
        os.nice(niceness)
    except OSError as exc:  # not allowed here: run at the normal priority
        log.warning("could not lower the CPU priority: %s", exc)
    _lower_autogroup(niceness)


AUTOGROUP = Path("/proc/self/autogroup")


def _lower_autogroup(niceness: int) -> None:
    """Lower this process's autogroup too, when the group is its own (it leads its
    session). Linux's autogroups (on by default) put each session in its own scheduling
    group, and groups share the CPU equally whatever their processes' nice values: a
    component started in its own session (the local stack starts each so) competed with
    the hot path at full weight despite ``nice``. A process that shares its session (run
    from a shell beside others) leaves the group alone: it would lower them all."""
    if os.getsid(0) != os.getpid():
        return
    try:
        AUTOGROUP.write_text(str(niceness))
    except FileNotFoundError:  # no autogroups (not Linux, or CONFIG_SCHED_AUTOGROUP off)
        pass
    except OSError as exc:
        log.warning("could not lower the CPU priority of this process's group: %s", exc)


GC_PAUSE = Histogram("rendezvous_gc_pause_seconds", "Python garbage-collection pauses",
                     ["generation"], buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1))


def watch_gc() -> None:
    """Export every garbage-collection pause (a stall of the whole loop) as a histogram."""
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            GC_PAUSE.labels(str(info["generation"])).observe(time.perf_counter() - started[0])

    gc.callbacks.append(callback)


class CpuBudget:
    """Keeps a loop's process at ``share`` of one core: call :meth:`pause_s` per item and
    sleep what it returns. Off-path components use it so that, on a small machine, the
    hot path keeps the cores it needs (a low priority alone was measured not to: any busy
    process delayed the workers' and serve's wake-ups); they lag instead, and catch up
    when the load drops."""

    def __init__(self, share: float, every: int = 256) -> None:
        self.share, self.every, self._n = share, every, 0
        self._wall, self._cpu = time.monotonic(), time.process_time()

    def pause_s(self) -> float:
        """Seconds to sleep now (0 most of the time) to stay within the share."""
        self._n += 1
        if self._n < self.every or self.share >= 1.0:
            return 0.0
        self._n = 0
        wall, cpu = time.monotonic(), time.process_time()
        pause = max(0.0, (cpu - self._cpu) / self.share - (wall - self._wall))
        self._wall, self._cpu = wall + pause, cpu
        return pause
