"""What the benchmark scripts share: how they import, their progress lines and the shape of
their Markdown sections.

Every script runs as ``python bench/<name>.py`` (``make bench`` runs ``bench/run.py``):
this folder is then first on ``sys.path``, so the scripts import one another by plain name
(``from common import progress``, ``from bench_pipeline import start``). Importing this
module also puts the repository root on ``sys.path``, for the chaos harness that lives with
the stress tests (``tests/stress/chaos``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

if str(REPO) not in sys.path:
    sys.path.append(str(REPO))


def progress(section: str) -> Callable[[str], None]:
    """A function printing ``[section] text`` on stderr: a benchmark's progress, kept out of
    the Markdown it prints on stdout."""

    def log(text: str) -> None:
        print(f"[{section}] {text}", file=sys.stderr, flush=True)

    return log


def markdown_table(head: str, rule: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table's lines: ``head`` (``"| a | b |"``), ``rule`` (``"|---|---:|"``) and
    one line per row of already formatted cells."""
    return [head, rule, *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def section(title: str, *blocks: str | Sequence[str]) -> str:
    """A Markdown section: ``## title``, then each block (a paragraph, or a list of lines
    such as a table) separated by a blank line, ending in a newline."""
    lines = [f"## {title}"]
    for block in blocks:
        lines.append("")
        lines.extend([block] if isinstance(block, str) else block)
    return "\n".join(lines) + "\n"
