"""The models an embedded rendezvous runs, loaded and verified as a worker loads them.

By default each model the policy prefers, at its newest version in the models directory
(what a worker serves without a registry); ``models`` adds others (recorded as candidates
of every decision, never chosen, as serve does with a model outside the preference) or pins
versions. A model may also be given as an object (:class:`~rendezvous.worker.answers.RowModel`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from rendezvous.core import Scales
from rendezvous.embedded.errors import EmbeddedError
from rendezvous.messages import Policy
from rendezvous.worker.answers import RowModel

ModelsLike = Iterable[str | RowModel] | Mapping[str, str | None] | None
"""``Embedded(models=...)``: names (newest version), ``{name: version}``, or model objects."""

BUNDLED = Path(__file__).resolve().parent.parent / "models"
"""The bundled models (the package's ``models/``), the same default as serve's settings."""


def wanted(policy: Policy, models: ModelsLike) -> dict[str, str | RowModel | None]:
    """Model name -> version to load (None: the newest) or the model object itself."""
    chosen: dict[str, str | RowModel | None] = dict.fromkeys(policy.prefer)
    if isinstance(models, Mapping):
        chosen.update(models)
    elif models is not None:
        for item in models:
            if isinstance(item, str):
                chosen.setdefault(item, None)
            else:
                chosen[item.name] = item
    return chosen


def load(models_dir: Path, chosen: Mapping[str, str | RowModel | None]) -> list[RowModel]:
    """The models in ``chosen``, loaded from ``models_dir`` where not given as objects."""
    from rendezvous.model import ModelError, load_model, resolve_model  # loads ONNX Runtime

    loaded: list[RowModel] = []
    for name, what in chosen.items():
        if what is not None and not isinstance(what, str):
            loaded.append(what)
            continue
        try:
            loaded.append(load_model(resolve_model(models_dir, name, what)))
        except ModelError as exc:
            raise EmbeddedError(f"cannot load model {name!r}: {exc}") from None
    return loaded


def scales(models_dir: Path) -> Scales:
    """Every model version's reference quantile function under ``models_dir``: serve's own
    (``rendezvous serve`` builds them the same way), for the policy's score mapping."""
    from rendezvous.model import reference_quantiles

    return Scales(reference_quantiles(models_dir))
