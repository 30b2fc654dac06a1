"""Model versions made for tests: a copy of an artifact under a new version, optionally
broken on purpose (its manifest's feature order shuffled)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import yaml

from rendezvous.model.manifest import MANIFEST_FILE, MODEL_FILE


def copy_version(source: Path, models_dir: Path, version: str,
                 shuffle_seed: int | None = None) -> Path:
    """``source`` (a ``<name>/<version>`` directory) copied as ``models_dir/<name>/<version>``
    with that version in its manifest. With ``shuffle_seed``, the manifest lists the
    features in a shuffled order: every row reaches the model with its columns permuted
    (a classic feature-pipeline bug; the sha256 still matches)."""
    manifest = yaml.safe_load((source / MANIFEST_FILE).read_text())
    target = models_dir / manifest["name"] / version
    target.mkdir(parents=True)
    shutil.copyfile(source / MODEL_FILE, target / MODEL_FILE)
    manifest["version"] = version
    if shuffle_seed is not None:
        features = manifest["features"]
        order = np.random.default_rng(shuffle_seed).permutation(len(features))
        manifest["features"] = [features[i] for i in order]
    (target / MANIFEST_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False))
    return target
