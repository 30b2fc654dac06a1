"""``rendezvous init``: the project files, the settings file every command reads from the
project directory (below the environment), and the refusal of a directory in use."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rendezvous.cli import main
from rendezvous.cli.common import settings
from rendezvous.errors import SettingsError
from rendezvous.project import readme_text
from rendezvous.settings import PACKAGE_DIR, SETTINGS_FILE, Settings, sources
from tests.unit.test_packaging import ROOT, _resolve

ENDPOINT_VARS = ("KAFKA_BOOTSTRAP_SERVERS", "RENDEZVOUS_BOOTSTRAP_SERVERS", "REDIS_URL",
                 "RENDEZVOUS_REDIS_URL", "RENDEZVOUS_KAFKA__BOOTSTRAP_SERVERS",
                 "RENDEZVOUS_REDIS__URL", "RENDEZVOUS_MODELS_DIR", "RENDEZVOUS_TOPICS_FILE",
                 "RENDEZVOUS_TOPIC_PREFIX")


@pytest.fixture(autouse=True)
def _no_endpoints_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENDPOINT_VARS:
        monkeypatch.delenv(var, raising=False)


def init(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["init", *args])
    return result.exit_code, result.output


def test_init_writes_the_project_files(tmp_path: Path) -> None:
    project = tmp_path / "fraud"
    code, output = init(str(project), "--topic-prefix", "fraud.", "--bootstrap-servers",
                        "kafka:9092", "--redis-url", "redis://cache:6379/0")
    assert code == 0, output
    assert sorted(p.name for p in project.iterdir()) == [
        "README.md", "models", SETTINGS_FILE, "topics.yaml"]
    assert [p.name for p in (project / "models").iterdir()] == ["README.md"]
    assert (project / "topics.yaml").read_bytes() == (PACKAGE_DIR / "topics.yaml").read_bytes()
    written = tomllib.loads((project / SETTINGS_FILE).read_text())
    assert written == {"models_dir": "models", "topics_file": "topics.yaml",
                       "topic_prefix": "fraud.", "kafka": {"bootstrap_servers": "kafka:9092"},
                       "redis": {"url": "redis://cache:6379/0"}}
    readme = (project / "README.md").read_text()
    for command in ("rendezvous model import primary primary.onnx --data data.csv",
                    "rendezvous model import canary canary.onnx --data data.csv",
                    "rendezvous up", "rendezvous demo --data data.csv --label target"):
        assert command in readme
        assert command in output  # the next commands are printed too
    assert f"wrote a rendezvous project in {project}" in output


def test_endpoints_not_given_stay_unset_and_the_prefix_defaults(tmp_path: Path) -> None:
    code, output = init(str(tmp_path / "p"))
    assert code == 0, output
    written = tomllib.loads((tmp_path / "p" / SETTINGS_FILE).read_text())
    assert written == {"models_dir": "models", "topics_file": "topics.yaml",
                       "topic_prefix": "rendezvous."}


def test_commands_run_from_the_project_read_its_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "p"
    assert init(str(project), "--topic-prefix", "p.", "--bootstrap-servers", "k:1",
                "--redis-url", "redis://r:2/0")[0] == 0
    monkeypatch.chdir(project)
    s = settings()  # what every subcommand builds its settings with
    assert s.models_dir == project / "models" and s.models_dir.is_absolute()
    assert s.topics_file == project / "topics.yaml"
    assert (s.topic_prefix, s.kafka_bootstrap(), s.redis_url()) == ("p.", "k:1", "redis://r:2/0")
    # a real command: the candidate is looked up in the project's (empty) models directory
    (project / "archive").mkdir()
    result = CliRunner().invoke(main, ["backtest", "--archive", "archive", "--model", "canary",
                                       "--report", "report", "--no-record"])
    assert result.exit_code == 1
    assert f"no model named 'canary' in {project / 'models'}" in result.output
    # elsewhere, the defaults
    monkeypatch.chdir(tmp_path)
    assert Settings().models_dir == PACKAGE_DIR / "models"
    assert Settings().topic_prefix == "rendezvous."


def test_the_environment_and_flags_win_over_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "p"
    assert init(str(project), "--topic-prefix", "p.", "--bootstrap-servers", "k:1",
                "--redis-url", "redis://r:2/0")[0] == 0
    with (project / SETTINGS_FILE).open("a") as file:  # any setting, sections as tables
        file.write('\n[worker]\nmax_batch = 7\n\n[decoy]\narchive = "archive"\n')
    monkeypatch.chdir(project)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env:9")
    monkeypatch.setenv("RENDEZVOUS_TOPIC_PREFIX", "env.")
    monkeypatch.setenv("RENDEZVOUS_WORKER__MAX_WAIT_MS", "3")
    s = Settings()
    assert (s.kafka_bootstrap(), s.topic_prefix, s.redis_url()) == ("env:9", "env.",
                                                                  "redis://r:2/0")
    assert (s.worker.max_batch, s.worker.max_wait_ms) == (7, 3.0)  # merged per field
    assert s.decoy.archive == project / "archive"  # a section's relative path, resolved
    monkeypatch.setenv("RENDEZVOUS_MODELS_DIR", str(PACKAGE_DIR / "models"))
    assert Settings().models_dir == PACKAGE_DIR / "models"
    assert settings(metrics_port=9).metrics_port == 9  # and the command line on top


def test_a_settings_file_of_the_old_template_still_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Before the [kafka] and [redis] sections, `init` wrote the endpoints as flat keys."""
    monkeypatch.setattr(sources, "_warned", set())
    (tmp_path / SETTINGS_FILE).write_text('topic_prefix = "p."\nbootstrap_servers = "k:1"\n'
                                          'redis_url = "redis://r:2/0"\n')
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="rendezvous.settings"):
        s = settings()
    assert (s.kafka_bootstrap(), s.redis_url()) == ("k:1", "redis://r:2/0")
    said = "\n".join(caplog.messages)
    assert "rendezvous.toml: bootstrap_servers is deprecated" in said
    assert "[kafka] bootstrap_servers" in said and "[redis] url" in said


def test_a_broken_settings_file_is_one_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / SETTINGS_FILE).write_text('models_dir = "unterminated\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match=f"{SETTINGS_FILE} is not valid TOML"):
        Settings()
    (tmp_path / SETTINGS_FILE).write_text("[worker]\nmax_batch = 0\n")
    with pytest.raises(click.ClickException, match="max_batch"):
        settings()


def test_a_directory_in_use_is_refused_unless_forced(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "mine.txt").write_text("keep me")
    code, output = init(str(project))
    assert code == 1
    assert f"{project} is not empty (mine.txt)" in output and "--force" in output
    assert [p.name for p in project.iterdir()] == ["mine.txt"]  # nothing written

    (project / "models" / "primary" / "1").mkdir(parents=True)
    (project / SETTINGS_FILE).write_text("old = 1\n")
    code, output = init(str(project), "--force", "--topic-prefix", "new.")
    assert code == 0, output
    assert (project / "mine.txt").read_text() == "keep me"
    assert (project / "models" / "primary" / "1").is_dir()  # models stay
    assert tomllib.loads((project / SETTINGS_FILE).read_text())["topic_prefix"] == "new."


def test_bad_options_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    code, output = init(str(tmp_path / "a"), "--bootstrap-servers", "k:1")
    assert code == 1 and "both --bootstrap-servers and --redis-url, or neither" in output
    code, output = init(str(tmp_path / "b"), "--topic-prefix", "two words")
    assert code == 1 and "topic prefix" in output
    (tmp_path / "file").write_text("")
    code, output = init(str(tmp_path / "file"))
    assert code != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_values_that_need_escaping_survive_the_settings_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "p"
    prefix = 'émile"\\.'
    assert init(str(project), "--topic-prefix", prefix)[0] == 0
    monkeypatch.chdir(project)
    assert Settings().topic_prefix == prefix


def test_help_says_what_init_writes() -> None:
    shown = CliRunner().invoke(main, ["init", "--help"]).output
    for word in ("models/", "topics.yaml", SETTINGS_FILE, "--force", "--bootstrap-servers",
                 "--redis-url", "--topic-prefix", "environment variables"):
        assert word in shown
    assert "init" in main.list_commands(click.Context(main))


def test_every_command_of_the_your_own_model_page_exists_with_its_options() -> None:
    """docs/your-own-model.md and the project README: each `rendezvous ...` line names a
    real subcommand and only options it has."""
    pages = [(ROOT / "docs" / "your-own-model.md").read_text(), readme_text(ROOT)]
    lines = [m for page in pages
             for m in re.findall(r"^\s*rendezvous ((?:--[\w-]+ \S+ )?[a-z][^\n`#]*)", page,
                                 re.M)]
    assert len(lines) >= 10, lines
    for line in lines:
        words = line.split()
        if words[0] == "--models-dir":
            words = words[2:]
        command = _resolve(words)
        options = {opt for p in command.params for opt in getattr(p, "opts", [])}
        for word in words:
            if word.startswith("--"):
                assert word in options, f"`rendezvous {line}`: {command.name} has no {word}"
