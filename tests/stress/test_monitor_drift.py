"""A shifted feature raises one drift alert, for that feature, within a window of the shift,
while stable inputs raise none (moved from tests/integration/test_monitor.py: on two test
processes sharing 2 cores the monitor judged a window before all of its 400 events were
read, once in four runs; make test keeps drift end to end in test_monitor_page.py)."""

from __future__ import annotations

import json
import time

import pytest

from rendezvous.local.supervisor import Supervisor
from rendezvous.model import sample_events
from rendezvous.monitor.drift import DriftReference
from rendezvous.monitor.windows import window_start
from rendezvous.settings import Settings
from tests.integration.test_monitor import produce, read_alerts, start_monitor, windows

pytestmark = pytest.mark.integration


def test_stable_inputs_no_alert_shifted_feature_one_alert(settings: Settings,
                                                          supervisor: Supervisor) -> None:
    window_s = 5
    port = start_monitor(supervisor, "--window-s", str(window_s), "--max-psi", "0.25")
    now = time.time() * 1000
    stable_ts = window_start(now, window_s * 1000) - window_s * 1000 + 100  # last window
    stable = sample_events(400, seed=11, prefix="stable")
    produce(settings, "input", [(e["id"], json.dumps({**e, "ts": stable_ts}).encode())
                                for e in stable])
    reference = DriftReference.load(settings.models_dir, "primary")
    feature = "mean_radius"
    shift = 2 * (reference.features[feature].std or 0.0)
    shifted = sample_events(400, seed=12, prefix="shifted")
    for event in shifted:
        event["features"][feature] += shift
    sent_at = time.time()
    shifted_ts = sent_at * 1000
    produce(settings, "input", [(e["id"], json.dumps({**e, "ts": shifted_ts}).encode())
                                for e in shifted])

    found = read_alerts(settings, until=lambda a: any(x["cause"] == "drift" for x in a),
                        timeout_s=window_s * 3 + 10)
    waited = time.time() - sent_at
    assert len(found) == 1, found
    alert = found[0]
    assert alert["feature"] == feature
    assert alert["window_start"] == window_start(shifted_ts, window_s * 1000)
    assert alert["value"] > alert["threshold"] == 0.25
    assert waited <= window_s + 0.5 + 3, f"alert came {waited:.1f} s after the shift"
    stable_window = windows(port)[window_start(stable_ts, window_s * 1000)]
    assert stable_window["closed"] and stable_window["drift"]["inputs"] == 400
    assert max(stable_window["drift"]["psi"].values()) < 0.25
