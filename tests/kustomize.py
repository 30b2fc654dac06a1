"""Render a kustomize directory the way CI can: ``kubectl kustomize`` when kubectl is on
PATH, else a ``kustomize`` binary, else one built once with Go (``go install
sigs.k8s.io/kustomize/kustomize/v5``, kept in the cache directory, like bench/vegeta.py).
With none of those the test fails and says what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from rendezvous.settings import Settings

KUSTOMIZE = "sigs.k8s.io/kustomize/kustomize/v5"
VERSION = "v5.8.1"


def _command() -> list[str]:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    binary = Settings().cache_dir / "bin" / "kustomize"
    if binary.exists():
        return [str(binary), "build"]
    if not shutil.which("go"):
        raise RuntimeError("rendering the manifests needs kubectl, kustomize, or Go to build "
                           f"kustomize ({KUSTOMIZE}@{VERSION}); install one of them")
    env = {**os.environ, "GOBIN": str(binary.parent)}
    done = subprocess.run(["go", "install", f"{KUSTOMIZE}@{VERSION}"], env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"go install {KUSTOMIZE}@{VERSION} failed: {done.stderr[-500:]}")
    return [str(binary), "build"]


def render(directory: Path) -> list[dict]:
    """The objects ``directory``'s kustomization renders to."""
    done = subprocess.run([*_command(), str(directory)], capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"kustomize failed on {directory}: {done.stderr.strip()}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]
