"""The model registry's changes as pure functions: an entry and a command in, the next entry out.

An entry (:class:`~rendezvous.messages.ModelVersions`) says, for one model name, which
version live workers serve, which versions shadow workers score, and which versions
were live before (a rollback returns to the last of them). Every change is a whole new
entry carrying who made it and when, so the compacted control topic keeps exactly the
state in force and the change that made it; and the sha256 of every version it names
(:func:`record_digests`), recorded once per version: workers refuse other bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import msgspec

from rendezvous.messages import BacktestVerdict, ModelVersions, RegistryChange
from rendezvous.registry.errors import PromotionRefused, RegistryError

MAX_PREVIOUS = 20
"""Earlier live versions kept for rollbacks."""


def initial(name: str, available: Sequence[str], target: str | None = None) -> ModelVersions:
    """The entry in force before any was published: workers serve the newest version of
    the models directory. A command about ``target`` (a version just trained, not served
    yet) counts the newest *other* version as the live one."""
    others = [v for v in available if v != target] or list(available)
    if not others:
        raise RegistryError(f"model {name!r} has no version in the models directory")
    return ModelVersions(name=name, live=others[-1])


def _check_known(name: str, version: str, available: Sequence[str]) -> None:
    if version not in available:
        raise RegistryError(f"model {name!r} has no version {version!r} in the models "
                            f"directory (versions there: {', '.join(available) or 'none'})")


def shadow(entry: ModelVersions, version: str, available: Sequence[str], change: RegistryChange
           ) -> ModelVersions:
    """Score ``version`` on live traffic beside the live one, recorded and never chosen."""
    _check_known(entry.name, version, available)
    if version == entry.live:
        raise RegistryError(f"{entry.name} {version} is the live version; shadow another one")
    if version in entry.shadow:
        raise RegistryError(f"{entry.name} {version} is already a shadow version")
    return ModelVersions(entry.name, entry.live, [*entry.shadow, version], entry.previous,
                         change)


def unshadow(entry: ModelVersions, version: str, change: RegistryChange) -> ModelVersions:
    """Stop scoring shadow ``version``."""
    if version not in entry.shadow:
        raise RegistryError(f"{entry.name} {version} is not a shadow version "
                            f"(shadow: {', '.join(entry.shadow) or 'none'})")
    return ModelVersions(entry.name, entry.live, [v for v in entry.shadow if v != version],
                         entry.previous, change)


def promote(entry: ModelVersions, version: str, available: Sequence[str],
            verdict: BacktestVerdict | None, change: RegistryChange) -> ModelVersions:
    """Make ``version`` live (and no longer a shadow); the live one becomes the rollback target.

    Refused (:class:`PromotionRefused`) unless the last backtest of ``version`` passed,
    when ``change.forced`` is not set."""
    _check_known(entry.name, version, available)
    if version == entry.live:
        raise RegistryError(f"{entry.name} {version} is live already")
    if not change.forced:
        if verdict is None:
            raise PromotionRefused(
                f"{entry.name} {version} has no backtest on record: run `rendezvous backtest "
                f"--candidate {entry.name}:{version} ...` first, or promote with --force")
        if not verdict.passed:
            raise PromotionRefused(
                f"the last backtest of {entry.name} {version} failed "
                f"({'; '.join(verdict.reasons) or 'no reason given'}); fix the model, or "
                "promote with --force")
        if verdict.sha256 is None or verdict.sha256 != change.sha256:
            scored = "does not say which bytes it scored" if verdict.sha256 is None else (
                f"scored model.onnx sha256 {verdict.sha256[:12]}, the version's manifest "
                f"now says {(change.sha256 or 'nothing')[:12]}")
            raise PromotionRefused(
                f"the backtest of {entry.name} {version} on record {scored}: run `rendezvous "
                f"backtest --candidate {entry.name}:{version} ...` again on these bytes, or "
                "promote with --force")
    previous = [*entry.previous, entry.live][-MAX_PREVIOUS:]
    return ModelVersions(entry.name, version, [v for v in entry.shadow if v != version],
                         previous, change)


def rollback(entry: ModelVersions, change: RegistryChange) -> ModelVersions:
    """Return to the version that was live before the current one."""
    if not entry.previous:
        raise RegistryError(f"{entry.name} has no earlier live version to roll back to")
    back = entry.previous[-1]
    return ModelVersions(entry.name, back, [v for v in entry.shadow if v != back],
                         entry.previous[:-1], change)


def versions_of(entry: ModelVersions) -> list[str]:
    """Every version ``entry`` names: live, shadows, rollback targets."""
    return list(dict.fromkeys([entry.live, *entry.shadow, *entry.previous]))


MAX_DIGESTS = 200
"""Digests of versions an entry no longer names that it keeps (the newest recorded), so a
version that comes back (shadowed or promoted again) is held to its first bytes."""


def record_digests(entry: ModelVersions, known: Mapping[str, str],
                   read: Callable[[str], str | None]) -> ModelVersions:
    """``entry`` with the sha256 of each version it names: the one ``known`` has (recorded
    by an earlier change; a version's bytes never change), else ``read(version)`` now (its
    manifest's; None when it cannot be read: left unrecorded); and the digests ``known``
    has of other versions, the newest :data:`MAX_DIGESTS` of them."""
    named = versions_of(entry)
    others = [v for v in known if v not in named][-MAX_DIGESTS:]
    digests = {v: known[v] for v in others}
    for version in named:
        digest = known.get(version) or read(version)
        if digest is not None:
            digests[version] = digest
    return msgspec.structs.replace(entry, sha256=digests)
