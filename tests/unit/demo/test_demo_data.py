"""``rendezvous demo --data``: a user's rows as the demo's events and feedback (checked
against the model's features before anything starts), and the gateway call's body."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import numpy as np
import pytest

from rendezvous.demo.data import BUNDLED, read_rows
from rendezvous.demo.errors import DemoError
from rendezvous.demo.gateway_call import example_features, infer_body
from rendezvous.model import load_manifest, resolve_model, sample_events
from rendezvous.model.dataset import sample_labels
from rendezvous.model.manifest import Feature, Manifest
from rendezvous.settings import PACKAGE_DIR

BUNDLED_MANIFEST = load_manifest(resolve_model(PACKAGE_DIR / "models", "primary"))


def manifest(**changes: object) -> Manifest:
    """A manifest of features age (number), visits (integer), city (string); binary 0/1."""
    features = [Feature("age"), Feature("visits", "int64"),
                Feature("city", "string", ["lyon", "paris"])]
    return msgspec.structs.replace(BUNDLED_MANIFEST, features=features, origin="imported",
                                   **changes)


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_rows_by_name_in_model_order_strings_kept_labels_as_in_the_file(
        tmp_path: Path) -> None:
    data = write(tmp_path, "id,city,visits,age,churned\n"
                           "a,paris,3,41.5,1\nb,lyon,0,30,0\nc,01,7,52.25,1\n")
    rows = read_rows(data, manifest(), "churned")
    assert rows.rows == [{"age": 41.5, "visits": 3.0, "city": "paris"},
                         {"age": 30.0, "visits": 0.0, "city": "lyon"},
                         {"age": 52.25, "visits": 7.0, "city": "01"}]  # text as written
    assert [list(r) for r in rows.rows] == [["age", "visits", "city"]] * 3  # model order
    assert rows.labels(3, 0) == [1, 0, 1] and all(type(x) is int for x in rows.labels(3, 0))
    assert rows.example() == rows.rows[0]
    assert rows.describe() == "data.csv: 3 rows of 3 features, labels from 'churned' (3 rows)"


def test_rows_are_cycled_to_the_event_count_with_the_demo_ids(tmp_path: Path) -> None:
    data = write(tmp_path, "age,visits,city,y\n1,1,lyon,a\n2,2,paris,b\n3,3,lyon,c\n")
    rows = read_rows(data, manifest(task="multiclass", classes=["a", "b", "c"]), "y")
    events = rows.events(5, 0, "demo")
    assert [e["id"] for e in events] == [f"demo-0-{i}" for i in range(5)]
    assert [e["features"]["age"] for e in events] == [1.0, 2.0, 3.0, 1.0, 2.0]
    assert rows.labels(5, 0) == ["a", "b", "c", "a", "b"]
    assert read_rows(data, manifest()).labels(5, 0) is None  # no --label: no feedback


def test_labels_keep_their_kind_and_an_empty_one_is_none(tmp_path: Path) -> None:
    data = write(tmp_path, "age,visits,city,price,klass\n"
                           "1,1,lyon,10.5,1\n2,2,paris,,\n3,3,lyon,7,0\n")
    regression = manifest(task="regression", classes=[])
    assert read_rows(data, regression, "price").labels(3, 0) == [10.5, None, 7.0]
    # a classifier's integer classes: whole numbers stay integers though the column
    # reads as floats (it has an empty value)
    labels = read_rows(data, manifest(), "klass").labels(3, 0)
    assert labels == [1, None, 0] and type(labels[0]) is int


def test_a_file_the_model_cannot_take_is_refused_naming_the_column(tmp_path: Path) -> None:
    missing = write(tmp_path, "age,city\n1,lyon\n")
    with pytest.raises(DemoError, match=r"feature 'visits': data\.csv has no column 'visits'"):
        read_rows(missing, manifest())
    text = write(tmp_path, "age,visits,city\nold,1,lyon\n")
    with pytest.raises(DemoError, match=r"column 'age': holds age \(text\), but model "
                                        r"primary/1 takes a number for feature 'age'"):
        read_rows(text, manifest())
    empty = write(tmp_path, "age,visits,city\n1,1,lyon\n,2,paris\n")
    with pytest.raises(DemoError, match=r"column 'age': row 2 is empty"):
        read_rows(empty, manifest())
    good = write(tmp_path, "age,visits,city\n1,1,lyon\n")
    with pytest.raises(DemoError, match=r"--label 'churned': data\.csv has no column"):
        read_rows(good, manifest(), "churned")
    with pytest.raises(DemoError, match="not a data file"):
        read_rows(write(tmp_path, "x", "data.txt"), manifest())


def test_parquet_is_read_too(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"city": ["nice"], "age": [3.5], "visits": [2], "y": ["yes"]}),
                   path)
    rows = read_rows(path, manifest(task="binary", classes=["no", "yes"]), "y")
    assert rows.rows == [{"age": 3.5, "visits": 2.0, "city": "nice"}]
    assert rows.labels(1, 0) == ["yes"]


def test_without_data_the_demo_sends_what_it_always_sent() -> None:
    """``make demo``: the packaged rows drawn as before, their labels, the same example."""
    assert BUNDLED.events(20, 3, "demo") == sample_events(20, seed=3, prefix="demo")
    assert BUNDLED.labels(20, 3) == sample_labels(20, 3)
    assert BUNDLED.example() is None


def test_the_gateway_call_takes_the_users_row() -> None:
    bundled = infer_body()
    assert bundled["inputs"][0]["name"] == "features"
    assert bundled["inputs"][0]["data"] == example_features()
    assert len(example_features()) == 30
    numbers = {"b": 2.0, "a": 1.5}  # all numbers: the [1, F] tensor, model order
    assert infer_body("r2", numbers) == {"id": "r2", "inputs": [
        {"name": "features", "datatype": "FP32", "shape": [1, 2], "data": [2.0, 1.5]}]}
    mixed = {"age": 41.5, "city": "paris"}  # a string: one input per feature
    assert infer_body(row=mixed)["inputs"] == [
        {"name": "age", "datatype": "FP32", "shape": [1], "data": [41.5]},
        {"name": "city", "datatype": "BYTES", "shape": [1], "data": ["paris"]}]
    assert example_features(mixed) == [41.5, "paris"]


def test_the_printed_example_row_reads_as_the_data_set_wrote_it() -> None:
    """The curl line of ``make demo``: 11.69, not float32's 11.6899995803833, and the same
    FP32 values reach the model."""
    printed = json.dumps(infer_body())
    assert not re.findall(r"\d\.\d{7,}", printed), printed
    drawn = sample_events(1, seed=7, named=False)[0]["features"]
    assert np.array_equal(np.float32(example_features()), np.float32(drawn))
