"""Example rows drawn from a manifest's reference: what ``up`` warms and shows with."""

from __future__ import annotations

from pathlib import Path

import msgspec

from rendezvous.messages import Invalid, decode_input, feature_row
from rendezvous.model import load_manifest
from rendezvous.model.manifest import OTHER_CATEGORY, Distribution, Feature
from rendezvous.model.samples import example_events, example_rows

MODELS = Path(__file__).resolve().parents[3] / "models"


def test_bundled_rows_stay_inside_the_reference_range() -> None:
    manifest = load_manifest(MODELS / "primary" / "1")
    rows = example_rows(manifest, 200, seed=3)
    assert len(rows) == 200 and list(rows[0]) == manifest.feature_names
    for name, reference in manifest.reference.features.items():
        values = [row[name] for row in rows]
        assert min(values) >= reference.quantiles[0] and max(values) <= reference.quantiles[-1]
    assert example_rows(manifest, 5, seed=3) == example_rows(manifest, 5, seed=3)


def test_string_and_integer_features_get_values_of_their_type() -> None:
    bundled = load_manifest(MODELS / "primary" / "1")
    features = [Feature("city", "string", ["Oslo", "Lima"]), Feature("rooms", "int64"),
                Feature("area", "float32")]
    reference = msgspec.structs.replace(bundled.reference, features={
        "city": Distribution(categories={"Oslo": 0.7, "Lima": 0.3, OTHER_CATEGORY: 0.0}),
        "rooms": Distribution(quantiles=[1, 1, 2, 2, 2, 3, 3, 3, 4, 5, 9]),
        "area": Distribution(quantiles=[float(i) for i in range(11)]),
    })
    manifest = msgspec.structs.replace(bundled, features=features, reference=reference)
    events = example_events(manifest, 100, seed=1, prefix="w", deadline_ms=50.0)
    assert {e["features"]["city"] for e in events} == {"Oslo", "Lima"}
    assert all(float(e["features"]["rooms"]).is_integer() for e in events)
    for event in events:  # every one is a valid event of this model
        decoded = decode_input(msgspec.json.encode(event), manifest.schema)
        assert not isinstance(decoded, Invalid), decoded
        assert isinstance(feature_row(decoded, manifest.schema), list), decoded
