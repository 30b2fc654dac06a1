"""``rendezvous model train``: labels from the ``feedback`` topic, inputs from the raw archive,
the next version of a model written to a models directory the user can write to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rendezvous.messages import Undecodable, decode_feedback
from rendezvous.model import list_versions, load_manifest, resolve_model
from rendezvous.model.manifest import Manifest
from rendezvous.model.retrain import join_labels, next_version, train_version
from rendezvous.registry.errors import RegistryError
from rendezvous.settings import PACKAGE_DIR, Settings
from rendezvous.transport.reader import TopicReader


def read_labels(settings: Settings, timeout_s: float = 60.0) -> dict[str, int]:
    """Request id -> label, every record of the ``feedback`` topic (the last label of an id
    counts); undecodable records are skipped."""
    labels: dict[str, int] = {}
    with TopicReader(settings, settings.topic("feedback"), name="train-feedback") as reader:
        for record in reader.read_to_end(timeout_s):
            try:
                feedback = decode_feedback(record.value())
            except Undecodable:
                continue
            if feedback.label in (0, 1):  # the bundled binary models' classes
                labels[feedback.id] = int(feedback.label)
    return labels


@dataclass(frozen=True)
class Trained:
    """What ``model train`` did."""

    manifest: Manifest
    directory: Path
    labels: int
    inputs: int


def train(settings: Settings, name: str, archive: Path, *, out: Path | None = None,
          version: str | None = None, labels: dict[str, int] | None = None) -> Trained:
    """Train the next version of ``name`` from ``archive`` + feedback into ``out`` (default:
    the models directory setting), with the features of the newest version there is."""
    target = Path(out or settings.models_dir).resolve()
    if target.is_relative_to((PACKAGE_DIR / "models").resolve()):
        raise RegistryError(
            f"{target} holds the models shipped inside the package: write new versions to a "
            "models directory of your own (copy the bundled ones there, e.g. `cp -r "
            f"{PACKAGE_DIR / 'models'} ~/rendezvous-models`, and set RENDEZVOUS_MODELS_DIR "
            "or --models-dir to it, or pass --out)")
    base = resolve_model(settings.models_dir, name)
    newest = load_manifest(base)
    if newest.origin != "trained":
        raise RegistryError(
            f"{name}/{newest.version} was imported (`model import`): `model train` retrains "
            "only versions this project trained (the bundled estimators), and has no "
            "estimator of yours to fit. To roll in a new version of your own model, train and "
            "export it as before, then `rendezvous model import "
            f"{name} NEW.onnx --data FILE --label COLUMN`, `model shadow`, `backtest` and "
            "`model promote`")
    features = newest.feature_names
    if labels is None:
        labels = read_labels(settings)
    rows = join_labels(archive, labels, features)
    if version is None:
        version = max((next_version(d, name) for d in (settings.models_dir, target)), key=int)
    if version in list_versions(target, name):
        raise RegistryError(f"{target / name / version} exists already; pass another --version")
    manifest = train_version(name, rows, features, target, version)
    return Trained(manifest, target / name / version, len(labels), rows.inputs)
