"""The repository's promises: compose services run real subcommands, the commands the README
and docs/ show exist."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import click
import pytest
import yaml

from rendezvous.cli import main
from rendezvous.cli.common import settings as cli_settings
from rendezvous.model.errors import ModelError
from rendezvous.model.runtime import resolve_model
from rendezvous.settings import Settings
from rendezvous.transport.errors import TransportError
from rendezvous.transport.topics import load_specs

ROOT = Path(__file__).resolve().parents[2]


def _resolve(args: list[str]) -> click.Command:
    """The click command ``rendezvous <args>`` would run, or fail naming the unknown word."""
    command: click.Command = main
    for word in args:
        if word.startswith("-") or not isinstance(command, click.Group):
            break
        sub = command.get_command(click.Context(command), word)
        assert sub is not None, f"`rendezvous {' '.join(args)}`: no subcommand {word!r}"
        command = sub
    return command


def test_every_compose_service_runs_a_real_subcommand() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    ours = {name: svc for name, svc in compose["services"].items() if "command" in svc}
    assert {"topics", "worker-primary", "worker-canary", "serve", "decoy", "monitor"} <= set(ours)
    for name, service in ours.items():
        command = _resolve(service["command"])
        assert not isinstance(command, click.Group), f"{name}: incomplete command"
        options = {opt for p in command.params for opt in getattr(p, "opts", [])}
        for word in service["command"]:
            if word.startswith("--"):
                assert word in options, f"{name}: {command.name} has no option {word}"


@pytest.mark.parametrize("page", ["README.md", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))])
def test_rendezvous_commands_of_the_readme_and_docs_exist(page: str) -> None:
    text = (ROOT / page).read_text()
    code = re.findall(r"```\w*\n(.*?)```", text, re.S) + re.findall(r"`([^`\n]+)`", text)
    commands = [m for block in code
                for m in re.findall(r"^\s*(?:\$ )?rendezvous ([a-z][\w -]*)", block, re.M)]
    if page == "README.md":
        assert commands, "the README shows no rendezvous command"
    for line in commands:
        _resolve(line.split())


def test_topics_and_models_ship_in_the_package_as_the_one_copy() -> None:
    package = ROOT / "rendezvous"
    # One source of truth: the top-level files are links to the package data.
    assert (ROOT / "topics.yaml").resolve() == package / "topics.yaml"
    for name in ("primary", "canary"):
        assert (ROOT / "models" / name).resolve() == package / "models" / name
    assert (ROOT / "models" / "train.py").is_file()
    # ... and the package-data globs of pyproject.toml pick every one of them up.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["rendezvous"]
    shipped = {p for g in globs for p in package.glob(g)}
    wanted = {package / "topics.yaml", *(package / "models").glob("*/*/model.*")}
    assert len(wanted) >= 5 and wanted <= shipped


def test_defaults_work_from_any_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("RENDEZVOUS_TOPICS_FILE", "RENDEZVOUS_MODELS_DIR"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings()
    assert settings.topics_file.is_file() and "input" in load_specs(settings)
    assert resolve_model(settings.models_dir, "primary").is_dir()
    assert resolve_model(settings.models_dir, "canary").is_dir()


def test_a_missing_override_says_which_path_was_tried(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RENDEZVOUS_MODELS_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("RENDEZVOUS_TOPICS_FILE", str(tmp_path / "no-topics.yaml"))
    settings = Settings()
    with pytest.raises(ModelError, match=re.escape(str(tmp_path / "nowhere"))):
        resolve_model(settings.models_dir, "primary")
    with pytest.raises(TransportError, match=re.escape(str(tmp_path / "no-topics.yaml"))):
        load_specs(settings)


def test_compose_publishes_exactly_the_ports_its_services_bind(monkeypatch) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    checked = 0
    for name, service in compose["services"].items():
        if "command" not in service or not service.get("ports"):
            continue
        for var in [v for v in os.environ if v.startswith("RENDEZVOUS_")]:
            monkeypatch.delenv(var)
        for var, value in service.get("environment", {}).items():
            monkeypatch.setenv(var, str(value))
        command = _resolve(service["command"])
        params = command.make_context(name, list(service["command"][1:])).params
        s = cli_settings(metrics_port=params.get("metrics_port"))
        if service["command"][0] == "gateway":
            bound = (params.get("host") or s.gateway.host, params.get("port") or s.gateway.port)
        else:
            bound = (s.metrics_host, s.metrics_port)
        for mapping in service["ports"]:
            host_ip, _host_port, container_port = mapping.rsplit(":", 2)
            assert host_ip == "127.0.0.1", f"{name}: publish on the host's loopback only"
            assert bound == ("0.0.0.0", int(container_port)), (
                f"{name} publishes {mapping} but binds {bound[0]}:{bound[1]}")
        checked += 1
    assert checked >= 5
