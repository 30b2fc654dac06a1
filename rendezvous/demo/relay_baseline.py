"""The bare relay's figures from the last ``make bench`` on this machine, for the demo.

The benchmark writes them next to the local stack's state; the demo prints its own
share of answers received in time beside them, so a user sees at once how far the
pipeline is from what Kafka alone allows here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from rendezvous.settings import Settings


def baseline_file(settings: Settings) -> Path:
    return settings.state_dir / "last-bench.json"


def record_relay(settings: Settings, rate: float, within: float, p99_ms: float) -> None:
    """Keep the bare relay's share within the deadline (0..1) and p99 at ``rate``."""
    path = baseline_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rate": rate, "within": within, "p99_ms": p99_ms,
                                "when": time.strftime("%Y-%m-%d %H:%M")}))


def relay_line(settings: Settings) -> str:
    """``bare relay ...`` from the last bench, or how to get one."""
    try:
        last = json.loads(baseline_file(settings).read_text())
        return (f"bare relay {last['within'] * 100:.2f} % at {last['rate']:,.0f}/s, "
                f"p99 {last['p99_ms']:.1f} ms (make bench, {last['when']})")
    except (OSError, ValueError, KeyError):
        return "bare relay: run `make bench` to compare"
