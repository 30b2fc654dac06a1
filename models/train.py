"""Train and export the bundled models: ``primary`` and ``canary``.

    python models/train.py [--out rendezvous/models]

Both learn scikit-learn's bundled breast-cancer data (see
``rendezvous.model.dataset``) on the fixed stratified split, are exported to
ONNX with skl2onnx, and are written as ``<out>/<name>/<version>/model.onnx``
plus a ``model.yaml`` manifest (sha256, features, held-out metrics, training
reference for drift checks). Training is deterministic: running it twice
writes the same bytes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sklearn.base import ClassifierMixin

from rendezvous.model.dataset import Split, split
from rendezvous.model.manifest import MODEL_FILE, Manifest
from rendezvous.model.training import (  # noqa: F401 - re-exported: tests and benches use them
    OUTPUT,
    TARGET_OPSET,
    build_estimators,
    build_manifest,
    export,
    onnx_bytes,
)

VERSION = "1"
# The package data directory: the models ship inside the package (models/<name> here are
# links to it), so one copy serves a checkout and an installed package alike.
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "rendezvous" / "models"


def fit_models(data: Split | None = None) -> dict[str, ClassifierMixin]:
    """Fit every estimator on the training rows of ``data`` (the fixed split by default)."""
    data = data if data is not None else split()
    fitted = {}
    for name, estimator in build_estimators().items():
        fitted[name] = estimator.fit(data.X_train, data.y_train)
    return fitted


def train_all(out: Path, version: str = VERSION, verbose: bool = True) -> dict[str, Manifest]:
    """Fit and export every model under ``out``; return the manifests by name."""
    say = print if verbose else (lambda *_: None)
    data = split()
    say(
        f"data: {len(data.y_train)} training rows, {len(data.y_test)} held out, "
        f"{len(data.feature_names)} features"
    )
    manifests = {}
    for name, estimator in build_estimators().items():
        started = time.perf_counter()
        say(f"{name}: fitting {type(estimator).__name__} ...")
        estimator.fit(data.X_train, data.y_train)
        manifest = export(name, estimator, data, out, version)
        size = (out / name / version / MODEL_FILE).stat().st_size
        say(
            f"{name}: wrote {out / name / version} ({size / 1024:.0f} KiB, "
            f"sha256 {manifest.sha256[:12]}) held-out AUC {manifest.metrics.auc:.4f} "
            f"accuracy {manifest.metrics.accuracy:.4f} in {time.perf_counter() - started:.1f} s"
        )
        manifests[name] = manifest
    return manifests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="directory to write <name>/<version>/ into (default: the package's rendezvous/models)",
    )
    parser.add_argument("--version", default=VERSION, help=f"version to write (default {VERSION})")
    args = parser.parse_args(argv)
    train_all(args.out, args.version)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
