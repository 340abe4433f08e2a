"""Every ``docs/<file>.md#<anchor>`` cited in the sources, tests and README names a heading of that file,
so a renamed heading or a deleted note fails here instead of leaving docstrings pointing nowhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(r"docs/([\w./-]+\.md)(?:#([\w-]+))?")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set:
    """Every heading anchor of a Markdown file; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict = {}
    out = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        match = None if in_code else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            slug = github_slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def citations():
    files = sorted((ROOT / "src").rglob("*.py")) + sorted((ROOT / "tests").rglob("*.py")) + [ROOT / "README.md"]
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in CITATION.finditer(line):
                yield f"{path.relative_to(ROOT)}:{number}", match.group(1), match.group(2)


CITED = list(citations())


def test_github_slug_matches_githubs_rules():
    assert github_slug("Centre code (CgAT)") == "centre-code-cgat"
    assert github_slug("FGSM and I-FGSM baselines") == "fgsm-and-i-fgsm-baselines"
    assert github_slug("Results and resuming") == "results-and-resuming"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_the_sources_cite_the_notes():
    assert any(where.startswith("src/") for where, _, _ in CITED)


@pytest.mark.parametrize("where, document, anchor", CITED, ids=[c[0] for c in CITED])
def test_cited_doc_and_heading_exist(where, document, anchor):
    path = ROOT / "docs" / document
    assert path.is_file(), f"{where} cites docs/{document}, which does not exist"
    if anchor is not None and not document.startswith("figures/"):
        found = anchors(path.read_text(encoding="utf-8"))
        assert anchor in found, f"{where} cites docs/{document}#{anchor}; headings there: {sorted(found)}"


def test_no_citation_of_documents_outside_the_repository():
    pattern = re.compile(r"DESIGN section|DESIGN\.md|METHODS\.md")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "src").rglob("*.py")
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert not offenders, f"cite docs/design.md or docs/methods.md instead: {offenders}"


@pytest.mark.parametrize("path", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_links_inside_the_notes_resolve(path):
    text = path.read_text(encoding="utf-8")
    missing = [a for a in re.findall(r"\]\(#([\w-]+)\)", text) if a not in anchors(text)]
    assert not missing, f"{path.name} links to headings it does not have: {missing}"
