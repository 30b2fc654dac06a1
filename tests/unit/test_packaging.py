"""The repository's promises: compose services run real subcommands, README commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import click
import yaml

from rendezvous.cli import main

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


def test_readme_rendezvous_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    code = re.findall(r"```\w*\n(.*?)```", readme, re.S) + re.findall(r"`([^`\n]+)`", readme)
    commands = [m for block in code
                for m in re.findall(r"^\s*(?:\$ )?rendezvous ([a-z][\w -]*)", block, re.M)]
    assert commands, "the README shows no rendezvous command"
    for line in commands:
        _resolve(line.split())
