"""The README is a front door into docs/: every relative link of README.md and docs/*.md
reaches a file, and a link to a heading reaches a heading. (`mkdocs build --strict` in
`make lint` checks the docs pages the same way; the README is outside the site.)"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250  # issue 32: a front door, not a manual

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The page without code blocks, whose `#` lines and brackets are not Markdown."""
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's toc extension (mkdocs) gives a heading."""
    text = re.sub(r"[`*]", "", heading)  # code and emphasis marks; their text stays
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(page: Path) -> set[str]:
    anchors: set[str] = set()
    for heading in HEADING.findall(_prose(page.read_text())):
        slug, n = _slug(heading), 0
        while (slug if n == 0 else f"{slug}_{n}") in anchors:  # toc numbers repeats
            n += 1
        anchors.add(slug if n == 0 else f"{slug}_{n}")
    return anchors


def _links(page: Path) -> list[str]:
    prose = INLINE_CODE.sub("", _prose(page.read_text()))
    return [t for t in LINK.findall(prose) if not re.match(r"[a-z][a-z+.-]*:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in _links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target}: {file.name} has no heading with that anchor")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_is_a_front_door_into_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in _links(ROOT / "README.md")}
    unlinked = sorted(p.name for p in set((ROOT / "docs").glob("*.md")) - linked)
    assert not unlinked, f"pages the README does not link: {unlinked}"


def test_the_slug_is_the_one_mkdocs_makes() -> None:
    assert _slug("The hot path's knobs") == "the-hot-paths-knobs"
    assert _slug("`rendezvous up`") == "rendezvous-up"
    assert _slug("`prefer_in_time`") == "prefer_in_time"
    assert _slug("Chaos run: three brokers") == "chaos-run-three-brokers"
    assert _slug("HTTP gateway (Open Inference Protocol v2)") == \
        "http-gateway-open-inference-protocol-v2"
