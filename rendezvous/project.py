"""``rendezvous init``: a project directory a user owns.

It holds the user's models (``models/``), a copy of the topic declarations
(``topics.yaml``), the project's settings (``rendezvous.toml``, read by every command
run from the directory: :class:`rendezvous.settings.ProjectFile`) and a README of the
next commands. Nothing here reads the settings file back: pydantic-settings does.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from rendezvous.errors import RendezvousError
from rendezvous.settings import SETTINGS_FILE, Settings

MODELS = "models"
TOPICS = "topics.yaml"
README = "README.md"


class ProjectError(RendezvousError, ValueError):
    """The project directory cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class ProjectOptions:
    """What ``rendezvous init`` writes into the settings file besides the paths."""

    topic_prefix: str = str(Settings.model_fields["topic_prefix"].default)
    bootstrap_servers: str | None = None
    redis_url: str | None = None


def init_project(directory: Path, options: ProjectOptions | None = None, *,
                 force: bool = False) -> list[Path]:
    """Write the project files into ``directory`` (created if missing); the paths written.

    Refuses a directory that is not empty unless ``force``: then the files of these names
    are replaced and nothing else is touched (models already in ``models/`` stay).
    """
    options = options or ProjectOptions()
    if (options.bootstrap_servers is None) != (options.redis_url is None):
        raise ProjectError("give both --bootstrap-servers and --redis-url, or neither (then "
                           "`rendezvous up` uses a running `rendezvous local up` or starts "
                           "a local Kafka and Redis)")
    if not options.topic_prefix or any(c.isspace() for c in options.topic_prefix):
        raise ProjectError(f"topic prefix {options.topic_prefix!r}: give a non-empty prefix "
                           "without spaces, e.g. `myproject.`")
    if directory.exists() and not directory.is_dir():
        raise ProjectError(f"{directory} exists and is not a directory")
    present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    if present and not force:
        shown = ", ".join(present[:5]) + (", ..." if len(present) > 5 else "")
        raise ProjectError(
            f"{directory} is not empty ({shown}): choose a new directory, or pass --force to "
            f"write {README}, {SETTINGS_FILE}, {TOPICS} and {MODELS}/ into it (files of those "
            "names are replaced, nothing else is touched)")
    models = directory / MODELS
    models.mkdir(parents=True, exist_ok=True)
    packaged_topics = Path(Settings.model_fields["topics_file"].default)
    files = {
        models / README: MODELS_README,
        directory / SETTINGS_FILE: settings_text(options),
        directory / README: readme_text(directory),
    }
    for path, text in files.items():
        path.write_text(text)
    shutil.copyfile(packaged_topics, directory / TOPICS)
    return [directory / README, directory / SETTINGS_FILE, directory / TOPICS, models / README]


def _toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's (non-ASCII characters kept as such)."""
    return json.dumps(value, ensure_ascii=False)


def settings_text(options: ProjectOptions) -> str:
    """``rendezvous.toml``: the project's paths, topic prefix and, if given, endpoints."""
    endpoint = {("kafka", "bootstrap_servers"): options.bootstrap_servers,
                ("redis", "url"): options.redis_url}
    examples = {("kafka", "bootstrap_servers"): "host:9092",
                ("redis", "url"): "redis://host:6379/0"}
    lines = [
        "# Settings of this rendezvous project, read by every `rendezvous` command run from",
        "# this directory. Environment variables (RENDEZVOUS_*, KAFKA_BOOTSTRAP_SERVERS,",
        "# REDIS_URL) and command-line flags win over this file. Relative paths are relative",
        "# to this directory. Any setting can be set here by name, sections as tables:",
        "#   [gateway]",
        "#   port = 8000",
        "",
        f"models_dir = {_toml_string(MODELS)}",
        f"topics_file = {_toml_string(TOPICS)}",
        f"topic_prefix = {_toml_string(options.topic_prefix)}",
    ]
    for (section, name), value in endpoint.items():
        if value is not None:
            lines += ["", f"[{section}]", f"{name} = {_toml_string(value)}"]
    if options.bootstrap_servers is None:
        lines += ["", "# Kafka and Redis: unset = a running `rendezvous local up` (`rendezvous up`",
                  "# starts a local Kafka and Redis when none runs)."]
        for (section, name), example in examples.items():
            lines += [f"# [{section}]", f"# {name} = {_toml_string(example)}"]
    return "\n".join(lines) + "\n"


MODELS_README = """\
# models

One directory per model and version, `<name>/<version>/model.onnx` and `model.yaml`,
written by `rendezvous model import`. A deployment has a `primary` (slow, accurate)
and a `canary` (fast, the fallback); both must take the same features.
"""


def readme_text(directory: Path) -> str:
    """The project's README: what is here and the next three commands."""
    name = directory.resolve().name
    return f"""\
# {name}

A rendezvous project: your own ONNX models served as a stream on Kafka.

| file | what it is |
|---|---|
| `{SETTINGS_FILE}` | settings of every `rendezvous` command run from here (env vars win) |
| `{TOPICS}` | the topics `rendezvous up` creates (partitions, retention) |
| `{MODELS}/` | your models, `<name>/<version>/model.onnx` + `model.yaml` |

Next, from this directory:

1. Import a primary (slow, accurate) and a canary (fast) model, each an ONNX file and a
   CSV or Parquet file of rows it scores (column names are the feature names; `--label`
   names the column of true labels, for held-out metrics):

   ```sh
   rendezvous model import primary primary.onnx --data data.csv --label target
   rendezvous model import canary canary.onnx --data data.csv --label target
   ```

2. Start the whole pipeline (a local Kafka and Redis unless `{SETTINGS_FILE}` names yours);
   it prints where it listens and a `curl` and a `kcat` line to try it with:

   ```sh
   rendezvous up
   ```

3. See your models under a load: stream your rows (feedback from the label column)
   through a pipeline of the demo's own, read a summary of what came back (results,
   latency, deadline misses, drift alerts, a backtest of the canary), and stop:

   ```sh
   rendezvous demo --data data.csv --label target
   ```

Then `rendezvous model shadow|promote|rollback`, `rendezvous backtest`; every command has
`--help`.
"""
