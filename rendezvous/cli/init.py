"""``rendezvous init DIR``: a project directory of one's own."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from rendezvous.cli.common import clear_errors
from rendezvous.settings import SETTINGS_FILE, Settings


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--topic-prefix", default=str(Settings.model_fields["topic_prefix"].default),
              show_default=True,
              help="Prefix of the project's topics and consumer groups (one per project on a "
                   "shared cluster).")
@click.option("--bootstrap-servers", default=None, metavar="HOST:PORT",
              help="Kafka of the project, written to the settings file [default: unset: a "
                   "running `rendezvous local up`, else `up` starts one].")
@click.option("--redis-url", default=None, metavar="URL",
              help="Redis of the project (redis://host:port/0), written to the settings file; "
                   "give it with --bootstrap-servers, or neither.")
@click.option("--force", is_flag=True,
              help="Write into a directory that is not empty: files of the same names are "
                   "replaced, nothing else is touched.")
def init(directory: Path, topic_prefix: str, bootstrap_servers: str | None,
         redis_url: str | None, force: bool) -> None:
    """Create DIRECTORY, a project of your own: models/, topics.yaml, rendezvous.toml and a
    README of the next commands.

    Every `rendezvous` command run from DIRECTORY reads its settings from
    rendezvous.toml (models directory, topics file, topic prefix, and Kafka and
    Redis if given here); environment variables and command-line flags win over
    the file. Refuses a DIRECTORY that is not empty, unless --force.
    """
    from rendezvous.project import ProjectOptions, init_project

    options = ProjectOptions(topic_prefix, bootstrap_servers, redis_url)
    with clear_errors():
        written = init_project(directory, options, force=force)
    click.echo(f"wrote a rendezvous project in {directory}:")
    for path in written:
        click.echo(f"  {path}")
    click.echo(f"next, from there (the commands read {SETTINGS_FILE}; see README.md):")
    click.echo(f"  cd {shlex.quote(str(directory))}")
    for line in NEXT:
        click.echo(f"  {line}")


NEXT = [
    "rendezvous model import primary primary.onnx --data data.csv --label target",
    "rendezvous model import canary canary.onnx --data data.csv --label target",
    "rendezvous up",
    "rendezvous demo --data data.csv --label target",
]
