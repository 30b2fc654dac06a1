"""``model train``'s core: archived inputs joined with feedback labels, the next version
trained, held-out AUC in the manifest, the same bytes twice (no broker)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rendezvous.model import load_dataset, load_manifest, load_model
from rendezvous.model.errors import ModelError
from rendezvous.model.retrain import held_out_split, join_labels, next_version, train_version
from rendezvous.registry.errors import RegistryError
from rendezvous.registry.training import train
from rendezvous.settings import Settings
from tests.unit.archive.test_archive import T0, archive, record

ROOT = Path(__file__).resolve().parents[3]


def labelled_archive(root: Path, n: int = 400) -> tuple[dict[str, int], list[str]]:
    """``n`` dataset rows archived as input events on two partitions, with labels for
    all but every tenth; plus a malformed record."""
    data = load_dataset()
    rows = np.random.default_rng(7).integers(0, len(data.X), n)
    records, labels = [], {}
    for i, row in enumerate(rows):
        rid = f"r{i}"
        features = dict(zip(data.feature_names, map(float, data.X[row]), strict=True))
        value = json.dumps({"id": rid, "features": features}).encode()
        records.append(record(i // 2, partition=i % 2, value=value, ts=T0 + i))
        if i % 10:
            labels[rid] = int(data.y[row])
    records.append(record(n, value=b"not json", ts=T0 + n))
    archive(root, records)
    return labels, data.feature_names


def test_join_keeps_labelled_valid_inputs_in_time_order(tmp_path: Path) -> None:
    labels, names = labelled_archive(tmp_path / "a", 100)
    rows = join_labels(tmp_path / "a", labels, names)
    assert rows.inputs == 100 and len(rows.ids) == 90 == len(labels)
    assert rows.times_ms == sorted(rows.times_ms)
    assert rows.X.shape == (90, 30) and rows.y.tolist() == [labels[r] for r in rows.ids]


def test_train_writes_the_next_version_byte_identical_twice(tmp_path: Path) -> None:
    labels, _ = labelled_archive(tmp_path / "a")
    settings = Settings(models_dir=ROOT / "models")
    outs = []
    for run in ("one", "two"):
        out = tmp_path / run
        done = train(settings, "primary", tmp_path / "a", out=out, labels=labels)
        assert done.directory == out / "primary" / "2"
        outs.append(done.directory)
    for file in ("model.onnx", "model.yaml"):
        assert (outs[0] / file).read_bytes() == (outs[1] / file).read_bytes(), file
    manifest = load_manifest(outs[0])
    assert manifest.version == "2" and manifest.training is not None
    assert (manifest.training.rows, manifest.training.held_out_rows) == (360, 90)
    assert manifest.training.first_ms >= T0 and manifest.metrics.rows == 90
    assert 0.9 < manifest.metrics.auc <= 1.0
    model = load_model(outs[0])  # sha256 verified
    assert model.version == "2"
    assert next_version(outs[0].parents[1], "primary") == "3"


def test_train_refuses_the_bundled_models_and_too_few_labels(tmp_path: Path) -> None:
    labels, names = labelled_archive(tmp_path / "a", 60)
    with pytest.raises(RegistryError, match="shipped inside the package"):
        train(Settings(), "primary", tmp_path / "a", labels=labels)
    rows = join_labels(tmp_path / "a", dict(list(labels.items())[:20]), names)
    with pytest.raises(ModelError, match="too few"):
        train_version("primary", rows, names, tmp_path / "out", "2")


def test_held_out_rows_never_repeat_a_training_row(tmp_path: Path) -> None:
    labels, names = labelled_archive(tmp_path / "a", 400)  # drawn with replacement: repeats
    rows = join_labels(tmp_path / "a", labels, names)
    train_idx, test_idx = held_out_split(rows.X, rows.y)
    assert len(set(map(bytes, rows.X))) < len(rows.X)
    assert not {bytes(r) for r in rows.X[train_idx]} & {bytes(r) for r in rows.X[test_idx]}
    assert 0.15 < len(test_idx) / len(rows.X) < 0.35
    assert set(rows.y[test_idx]) == {0, 1}


def test_train_says_an_imported_model_is_not_its_to_retrain(tmp_path: Path) -> None:
    import shutil

    import msgspec

    from rendezvous.model.manifest import write_manifest

    models = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "primary", models / "primary")
    directory = models / "primary" / "1"
    write_manifest(msgspec.structs.replace(load_manifest(directory), origin="imported"),
                   directory)
    with pytest.raises(RegistryError, match=r"primary/1 was imported .*model import primary"):
        train(Settings(models_dir=models), "primary", tmp_path / "archive", out=tmp_path / "o",
              labels={})
