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

# (module under rendezvous.cli, attribute) of every subcommand, in --help order.
SUBCOMMANDS = [
    ("local", "local"),
    ("topics", "topics"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """rendezvous: run ML models in production as a stream over Kafka."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose + 1, 2)]
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


for _module, _attr in SUBCOMMANDS:
    main.add_command(getattr(importlib.import_module(f"rendezvous.cli.{_module}"), _attr))
