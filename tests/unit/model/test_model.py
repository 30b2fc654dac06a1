"""Model artifacts and the ONNX Runtime runtime: parity, integrity, resolution, shapes."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from rendezvous.messages import InputEvent, decode_input, encode, feature_row
from rendezvous.model import (
    ArtifactError,
    InputShapeError,
    ModelError,
    load_dataset,
    load_manifest,
    load_model,
    resolve_model,
    sample_events,
    split,
)
from rendezvous.model.manifest import manifest_to_yaml, write_manifest

REPO = Path(__file__).resolve().parents[3]
MODELS = REPO / "models"
NAMES = ["primary", "canary"]


def _load_train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rendezvous_train", MODELS / "train.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train() -> ModuleType:
    return _load_train()


@pytest.fixture(scope="module")
def fresh(train: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both models fitted by train.py's own code path and exported to a temporary directory."""
    out = tmp_path_factory.mktemp("models")
    data = split()
    fitted = train.fit_models(data)
    for name, estimator in fitted.items():
        train.export(name, estimator, data, out)
    return {"out": out, "fitted": fitted, "data": data}


@pytest.fixture
def primary_copy(tmp_path: Path) -> Path:
    """A private copy of the committed primary artifact, safe to damage."""
    return Path(shutil.copytree(MODELS / "primary" / "1", tmp_path / "primary" / "1"))


@pytest.mark.parametrize("name", NAMES)
def test_onnx_matches_sklearn(fresh: dict[str, Any], name: str) -> None:
    model = load_model(fresh["out"] / name / "1")
    estimator, data = fresh["fitted"][name], fresh["data"]
    for rows in (data.X_test, data.X_train):
        prediction = model.predict(rows)
        scores, labels = prediction.scores, np.asarray(prediction.labels)
        expected = estimator.predict_proba(rows)[:, 1]
        assert np.max(np.abs(scores - expected)) <= 1e-5
        clear = np.abs(expected - 0.5) > 1e-5  # a tie may round either way in float32
        assert np.array_equal(labels[clear], estimator.predict(rows)[clear])


def test_training_is_reproducible(train: ModuleType, fresh: dict[str, Any], tmp_path: Path) -> None:
    train.train_all(tmp_path, verbose=False)
    for name in NAMES:
        for file in ("model.onnx", "model.yaml"):
            again = (tmp_path / name / "1" / file).read_bytes()
            assert again == (fresh["out"] / name / "1" / file).read_bytes(), f"{name}/{file}"


@pytest.mark.parametrize("name", NAMES)
def test_committed_artifact_matches_its_manifest(name: str) -> None:
    model = load_model(resolve_model(MODELS, name))
    data = split()
    prediction = model.predict(data.X_test)
    scores, labels = prediction.scores, np.asarray(prediction.labels)
    assert model.name == name and model.version == "1"
    assert model.feature_names == data.feature_names
    assert roc_auc_score(data.y_test, scores) == pytest.approx(model.manifest.metrics.auc, abs=1e-6)
    assert np.mean(labels == data.y_test) == pytest.approx(model.manifest.metrics.accuracy, 1e-6)
    assert (MODELS / name / "1" / "model.onnx").stat().st_size < 1_000_000


def test_both_models_are_good_on_held_out_rows() -> None:
    # On this data set the linear canary ranks held-out rows slightly better
    # than the boosted primary (0.995 vs 0.971 AUC); both are well above 0.95.
    aucs = {name: load_manifest(MODELS / name / "1").metrics.auc for name in NAMES}
    assert all(auc > 0.95 for auc in aucs.values()), aucs
    assert abs(aucs["primary"] - aucs["canary"]) < 0.05, aucs


def test_manifest_round_trip(tmp_path: Path) -> None:
    manifest = load_manifest(MODELS / "primary" / "1")
    write_manifest(manifest, tmp_path)
    again = load_manifest(tmp_path)
    assert again == manifest
    assert manifest_to_yaml(again) == (MODELS / "primary" / "1" / "model.yaml").read_text()
    assert manifest.feature_names == load_dataset().feature_names
    assert manifest.feature_names[7] == "mean_concave_points"
    ref = manifest.reference
    assert ref.levels == [i / 10 for i in range(11)]
    assert set(ref.features) == set(manifest.feature_names)
    for dist in [*ref.features.values(), ref.score]:
        assert len(dist.quantiles) == 11 and dist.quantiles == sorted(dist.quantiles)
        assert dist.mean is not None and dist.std is not None and dist.std >= 0


def test_flipped_byte_is_refused(primary_copy: Path) -> None:
    onnx_path = primary_copy / "model.onnx"
    data = bytearray(onnx_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    onnx_path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as err:
        load_model(primary_copy)
    assert str(onnx_path) in str(err.value)
    assert "sha256" in str(err.value) and "models/train.py" in str(err.value)


def test_truncated_file_is_refused(primary_copy: Path) -> None:
    onnx_path = primary_copy / "model.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match="does not match its manifest") as err:
        load_model(primary_copy)
    assert str(onnx_path) in str(err.value)


def test_garbage_with_matching_hash_fails_in_ort_as_model_error(primary_copy: Path) -> None:
    """A manifest updated for a file that is not ONNX at all: ORT's failure names the file."""
    import hashlib

    import msgspec

    onnx_path = primary_copy / "model.onnx"
    garbage = b"this is not an onnx model\x00\xff" * 10
    onnx_path.write_bytes(garbage)
    manifest = load_manifest(primary_copy)
    write_manifest(
        msgspec.structs.replace(manifest, sha256=hashlib.sha256(garbage).hexdigest()), primary_copy
    )
    with pytest.raises(ModelError, match="ONNX Runtime cannot load") as err:
        load_model(primary_copy)
    assert str(onnx_path) in str(err.value)


def test_missing_files_are_refused(primary_copy: Path) -> None:
    (primary_copy / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="model.onnx"):
        load_model(primary_copy)
    (primary_copy / "model.yaml").unlink()
    with pytest.raises(ArtifactError, match="model.yaml"):
        load_model(primary_copy)


def test_manifest_that_disagrees_with_graph_is_refused(primary_copy: Path) -> None:
    import msgspec

    manifest = load_manifest(primary_copy)
    write_manifest(msgspec.structs.replace(manifest, features=manifest.features[:-1]), primary_copy)
    with pytest.raises(ArtifactError, match="input width 30, manifest lists 29"):
        load_model(primary_copy)


def test_resolve_model_picks_newest_numerically(tmp_path: Path) -> None:
    for version in ("1", "2", "10", "notes"):
        (tmp_path / "fraud" / version).mkdir(parents=True)
    assert resolve_model(tmp_path, "fraud") == tmp_path / "fraud" / "10"
    assert resolve_model(tmp_path, "fraud", "2") == tmp_path / "fraud" / "2"
    with pytest.raises(ModelError, match=r"no version '3'.*1, 2, 10"):
        resolve_model(tmp_path, "fraud", "3")
    with pytest.raises(ModelError, match=r"no model named 'nope'.*models there: fraud"):
        resolve_model(tmp_path, "nope")


def test_resolve_committed_models() -> None:
    for name in NAMES:
        assert resolve_model(MODELS, name) == MODELS / name / "1"


@pytest.mark.parametrize("batch", [1, 512])
def test_predict_shapes(batch: int) -> None:
    model = load_model(MODELS / "canary" / "1")
    rows = load_dataset().X[np.random.default_rng(1).integers(0, 569, size=batch)]
    prediction = model.predict(rows.astype(np.float64))  # converted to float32
    scores, labels = prediction.scores, np.asarray(prediction.labels)
    assert scores.shape == (batch,) and scores.dtype == np.float64
    assert labels.shape == (batch,) and labels.dtype == np.int64
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.array_equal(labels, (scores > 0.5).astype(np.int64))


def test_predict_refuses_wrong_width() -> None:
    model = load_model(MODELS / "canary" / "1")
    with pytest.raises(InputShapeError, match="30 features"):
        model.predict(np.zeros((2, 29), dtype=np.float32))
    with pytest.raises(InputShapeError):
        model.predict(np.zeros(30, dtype=np.float32))


def test_session_runs_on_one_thread() -> None:
    options = load_model(MODELS / "canary" / "1")._session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1


@pytest.mark.parametrize("named", [True, False])
def test_sample_events_decode_to_dataset_rows(named: bool) -> None:
    data = load_dataset()
    events = sample_events(50, seed=7, named=named)
    assert events == sample_events(50, seed=7, named=named)
    assert len({e["id"] for e in events}) == 50
    rows = {tuple(row) for row in data.X.tolist()}
    for raw in events:
        event = decode_input(encode(InputEvent(**raw)))
        assert isinstance(event, InputEvent)
        row = feature_row(event, data.feature_names)
        assert isinstance(row, list)
        assert tuple(np.asarray(row, dtype=np.float32).tolist()) in rows
