"""The ``rendezvous`` command: one subcommand per component, no logic here.

Each subcommand builds :class:`~rendezvous.settings.Settings` from the
environment (``RENDEZVOUS_*``, ``KAFKA_BOOTSTRAP_SERVERS``, ``REDIS_URL``) and
calls the component's ``run()``.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

import click

from rendezvous import logs

# (module under rendezvous.cli, its click command) of every subcommand, in --help order.
SUBCOMMANDS = [
    ("init", "init"),
    ("local", "local"),
    ("topics", "topics"),
    ("worker", "worker"),
    ("serve", "serve"),
    ("policy", "policy"),
    ("model", "model"),
    ("decoy", "decoy"),
    ("archive", "archive"),
    ("inspect", "inspect"),
    ("replay", "replay"),
    ("backtest", "backtest"),
    ("monitor", "monitor"),
    ("status", "status"),
    ("demo", "demo"),
    ("up", "up"),
    ("gateway", "gateway"),
    ("plan", "plan"),
]


class LazyGroup(click.Group):
    """Imports a subcommand's module only when it runs, so `rendezvous worker` does not
    pay for faust or matplotlib."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, _ in SUBCOMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for name, attr in SUBCOMMANDS:
            if name == cmd_name:
                module = importlib.import_module(f"rendezvous.cli.{name}")
                command: click.Command = getattr(module, attr)
                return command
        return None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--log-format", type=click.Choice(logs.FORMATS), envvar=logs.FORMAT_ENV,
              default="text", show_default=True,
              help="text for people, json (one object per line) for machines; components "
                   "started by this command log the same way.")
@click.option("--models-dir", type=click.Path(path_type=Path), envvar="RENDEZVOUS_MODELS_DIR",
              help="Models directory (<name>/<version>/model.onnx); default: the bundled "
                   "models of the package.")
@click.option("--topics-file", type=click.Path(path_type=Path),
              envvar="RENDEZVOUS_TOPICS_FILE",
              help="Topic declarations; default: the package's topics.yaml.")
def main(verbose: int, log_format: logs.LogFormat, models_dir: Path | None,
         topics_file: Path | None) -> None:
    """rendezvous: run ML models in production as a stream over Kafka."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose + 1, 2)]
    logs.setup(level, log_format)
    # Settings are read from the environment, by this process and by the components
    # it starts: the flags are that environment.
    for var, path in (("RENDEZVOUS_MODELS_DIR", models_dir),
                      ("RENDEZVOUS_TOPICS_FILE", topics_file)):
        if path is not None:
            os.environ[var] = str(path.resolve())
