"""Issue 31, item 10: every registry change records the sha256 of the version it is
about (read from the manifest when the change is made) and keeps it while the version is
named; a command refuses a version whose manifest changed since; a worker refuses a
version whose ``model.onnx`` differs from the registry's digest and stays on its own."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from rendezvous.messages import ModelVersions, RegistryChange, decode_model_versions, encode
from rendezvous.registry import commands
from rendezvous.registry.errors import RegistryError
from rendezvous.settings import PACKAGE_DIR, Settings
from rendezvous.worker.errors import WorkerError
from rendezvous.worker.runner import load
from tests.model_versions import copy_version
from tests.unit.registry.test_registry import FakeWatcher

BUNDLED = PACKAGE_DIR / "models"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def swap(version_dir: Path) -> str:
    """Replace ``model.onnx`` by other valid bytes (the canary's graph: same features) and
    its manifest's sha256 with them, as one who can write the models directory would;
    returns the new digest."""
    shutil.copyfile(BUNDLED / "canary" / "1" / "model.onnx", version_dir / "model.onnx")
    manifest = yaml.safe_load((version_dir / "model.yaml").read_text())
    manifest["sha256"] = sha(version_dir / "model.onnx")
    (version_dir / "model.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return str(manifest["sha256"])


@pytest.fixture
def models(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    shutil.copytree(BUNDLED / "primary" / "1", root / "primary" / "1")
    copy_version(root / "primary" / "1", root, "2")
    return root


class Registry:
    """commands.change's control topic, in memory."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entries: dict[str, ModelVersions] = {}
        monkeypatch.setattr(commands, "read_registry", lambda _s: (dict(self.entries), {}))
        monkeypatch.setattr(commands, "publish_entry", self.publish)

    def publish(self, _settings: Any, entry: ModelVersions) -> None:
        self.entries[entry.name] = decode_model_versions(encode(entry))  # as on the wire


def test_each_change_records_the_digest_of_its_version(models: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(monkeypatch)
    settings = Settings(models_dir=models)
    one, two = sha(models / "primary" / "1" / "model.onnx"), sha(
        models / "primary" / "2" / "model.onnx")
    promoted = commands.change(settings, "primary", "promote", "2", actor="ci", forced=True)
    assert promoted.change is not None and promoted.change.sha256 == two
    assert promoted.sha256 == {"2": two, "1": one}  # the live one and the rollback target
    rolled = commands.change(settings, "primary", "rollback", actor="ci")
    assert rolled.change is not None and rolled.change.sha256 == one
    assert rolled.sha256 == {"1": one, "2": two}  # 2 is named no more; its digest stays
    # The bytes of 2 change after it was promoted: shadowing or promoting it again is
    # refused (a version is immutable), naming both digests.
    swapped = swap(models / "primary" / "2")
    for action in ("shadow", "promote"):
        with pytest.raises(RegistryError, match=f"{swapped[:16]}.*{two[:16]}"):
            commands.change(settings, "primary", action, "2", actor="ci", forced=True)
    assert registry.entries["primary"] == rolled  # nothing published


def test_old_entries_without_digests_still_read() -> None:
    old = b'{"name":"primary","live":"1","shadow":[],"previous":[],"change":' \
          b'{"action":"promote","version":"1","actor":"x","at_ms":1.0},"v":2}'
    entry = decode_model_versions(old)
    assert entry.sha256 == {} and entry.change is not None and entry.change.sha256 is None


def test_the_worker_refuses_bytes_the_registry_did_not_record(models: Path) -> None:
    settings = Settings(models_dir=models)
    recorded = sha(models / "primary" / "2" / "model.onnx")
    assert load(settings, "primary", "2", recorded).version == "2"
    swap(models / "primary" / "2")
    with pytest.raises(WorkerError, match=rf"refusing primary 2: .*{recorded[:16]}"):
        load(settings, "primary", "2", recorded)
    assert load(settings, "primary", "2").version == "2"  # no digest recorded: as before


def test_the_follower_stays_on_its_version_when_the_next_one_is_refused(
        models: Path, caplog: pytest.LogCaptureFixture) -> None:
    from rendezvous.worker.follow import Follower

    settings = Settings(models_dir=models)
    one, two = (sha(models / "primary" / v / "model.onnx") for v in ("1", "2"))
    watcher = FakeWatcher()
    watcher.entries["primary"] = ModelVersions("primary", "1", sha256={"1": one})
    follower = Follower(watcher, "primary", "live",  # type: ignore[arg-type]
                        lambda v: load(settings, "primary", v), newest="2")
    assert [m.version for m in follower.initial()] == ["1"]
    swap(models / "primary" / "2")  # after the promote below recorded the genuine bytes
    change = RegistryChange("promote", "2", "ci", 1.0, True, None, two)
    watcher.entries["primary"] = ModelVersions("primary", "2", [], ["1"], change,
                                               sha256={"2": two, "1": one})
    follower._next_check = 0.0
    follower.check()
    assert follower._thread is not None
    follower._thread.join(10)
    assert follower.take() is None and follower.versions == ["1"]
    assert "refusing primary 2" in caplog.text and "keeping ['1']" in caplog.text


def test_digests_of_versions_named_no_more_are_bounded() -> None:
    from rendezvous.registry.state import MAX_DIGESTS, record_digests

    known = {str(v): f"{v:064x}" for v in range(1, MAX_DIGESTS + 50)}
    entry = record_digests(ModelVersions("primary", "1"), known, lambda _v: None)
    assert len(entry.sha256) == MAX_DIGESTS + 1 and entry.sha256["1"] == known["1"]
    assert str(MAX_DIGESTS + 49) in entry.sha256 and "2" not in entry.sha256
