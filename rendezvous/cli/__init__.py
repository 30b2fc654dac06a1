"""The ``rendezvous`` command: one subcommand per component, no logic here.

Each subcommand builds :class:`~rendezvous.settings.Settings` from the
environment (``RENDEZVOUS_*``, ``KAFKA_BOOTSTRAP_SERVERS``, ``REDIS_URL``) and
calls the component's ``run()``.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

# (module under rendezvous.cli, its click command) of every subcommand, in --help order.
SUBCOMMANDS = [
    ("local", "local"),
    ("topics", "topics"),
    ("worker", "worker"),
    ("serve", "serve"),
    ("policy", "policy"),
    ("decoy", "decoy"),
    ("replay", "replay"),
    ("backtest", "backtest"),
    ("monitor", "monitor"),
    ("status", "status"),
    ("demo", "demo"),
    ("up", "up"),
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
def main(verbose: int) -> None:
    """rendezvous: run ML models in production as a stream over Kafka."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose + 1, 2)]
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
