"""The README and docs/: short, their figures those of the committed metrics, their links alive.

- The README's headline figures are read from metrics/headline.json and formatted here, never copied.
- Links and headings are read by markdown-it-py (CommonMark, with tables), so code spans and fenced
  code are never taken for links; an anchor must be a heading of its target, slugged as GitHub does.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from support import REPO

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
MAX_README_BYTES = 15_000
HEADLINE_LINES = 40  # the answer comes before the reader has to scroll far
SETUP_COMMANDS = (
    "make repro EMOTION6=/path/to/Emotion6.zip",
    "make test EMOTION6=/path/to/Emotion6.zip",
)

MARKDOWN = MarkdownIt("commonmark").enable("table")


def tokens(page: Path) -> list[Token]:
    """Every token of `page`, inline children included, in document order."""
    out = []
    for token in MARKDOWN.parse(page.read_text(encoding="utf-8")):
        out.append(token)
        out.extend(token.children or [])
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of `page`'s headings, a repeated one numbered as GitHub does (`name`, `name-1`, ...)."""
    found: set[str] = set()
    stream = MARKDOWN.parse(page.read_text(encoding="utf-8"))
    for opening, inline in itertools.pairwise(stream):
        if opening.type == "heading_open":
            text = "".join(child.content for child in inline.children or [] if child.type in ("text", "code_inline"))
            name, n = slug(text), 0
            while (candidate := name if n == 0 else f"{name}-{n}") in found:
                n += 1
            found.add(candidate)
    return found


def relative_links(page: Path) -> list[str]:
    """The targets of `page`'s links and images that point inside the repository."""
    targets = [t.attrs.get("href") or t.attrs.get("src") for t in tokens(page) if t.type in ("link_open", "image")]
    return [str(t) for t in targets if not urlsplit(str(t)).scheme]


def test_a_relative_link_is_found_and_a_code_span_is_not(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\nSee [the protocol](docs/protocol.md#margins), ![a chart](../plots/x.png),\n"
        "[a site](https://example.org/a.md) and `[not](a-link.md)`.\n\n```\n[nor](this.md)\n```\n",
        encoding="utf-8",
    )
    assert relative_links(page) == ["docs/protocol.md#margins", "../plots/x.png"]


def test_anchors_are_slugged_as_github_does(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Comparing two runs: `ewmtcnn compare A B`\n\n## Prior (`prior.*`)\n\n## Notes\n\n## Notes\n",
        encoding="utf-8",
    )
    assert anchors(page) == {"comparing-two-runs-ewmtcnn-compare-a-b", "prior-prior", "notes", "notes-1"}


def test_the_readme_is_short() -> None:
    assert len(README.read_bytes()) <= MAX_README_BYTES


def test_the_readme_opens_with_the_headline_figures_and_the_verdict() -> None:
    """The held-out KL, accuracy and balanced accuracy of metrics/headline.json at 3 decimals, and the verdict."""
    headline = json.loads((REPO / "metrics" / "headline.json").read_text(encoding="utf-8"))
    top = "".join(README.read_text(encoding="utf-8").splitlines(keepends=True)[:HEADLINE_LINES])
    for measure in ("kl", "acc", "balanced_acc"):
        figure = f"{headline[measure]:.3f}"
        assert re.search(rf"(?<![\d.]){re.escape(figure)}(?!\d)", top), f"{measure} {figure} not in the first lines"
    assert "equivalent" in top
    assert "docs/results.md" in top


def test_the_readme_gives_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    for command in SETUP_COMMANDS:
        assert command in text


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    """Each link's file exists in the repository, and its anchor, if any, is a heading of that file."""
    for link in relative_links(page):
        parts = urlsplit(link)
        target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        assert target.is_relative_to(REPO), f"{page.name}: {link} points outside the repository"
        assert target.exists(), f"{page.name}: {link}: no such file"
        if parts.fragment:
            assert target.suffix == ".md", f"{page.name}: {link}: an anchor into a file that is not Markdown"
            assert parts.fragment in anchors(target), f"{page.name}: {link}: no such heading in {target.name}"


def test_the_readme_bibtex_cites_as_citation_cff_does() -> None:
    """Each reference of CITATION.cff has a BibTeX entry in the README with its DOI and its authors in order."""
    text = README.read_text(encoding="utf-8")
    entries = re.findall(r"^@\w+\{.*?^\}", text, flags=re.MULTILINE | re.DOTALL)
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert len(entries) == len(cff["references"])
    for reference in cff["references"]:
        doi = re.compile(rf"^\s*doi\s*=\s*\{{{re.escape(str(reference['doi']))}\}}", flags=re.MULTILINE)
        (entry,) = [e for e in entries if doi.search(e)]
        fields = dict(re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?$", entry, flags=re.MULTILINE))
        family = [name.split(",")[0].strip() for name in fields["author"].split(" and ")]
        assert family == [a["family-names"] for a in reference["authors"]]
        assert fields["title"] == reference["title"]
        assert fields["year"] == str(reference["year"])
        assert fields["pages"] == f"{reference['start']}--{reference['end']}"


RESULTS = REPO / "docs" / "results.md"
#: A figure with its interval as the tables print it: `+0.0018 [-0.0017, +0.0053]`.
FIGURE_WITH_INTERVAL = re.compile(r"[+-]?\d+\.\d+ \[[+-]?\d+\.\d+, [+-]?\d+\.\d+\]")
TABLE_BLOCK = re.compile(r"<!-- table-(\w+):start -->\n(.*?)<!-- table-\1:end -->", re.S)


def prose_and_tables(text: str) -> tuple[str, str]:
    """The text outside the generated table blocks, and the text inside them."""
    return TABLE_BLOCK.sub("", text), "\n".join(block for _, block in TABLE_BLOCK.findall(text))


def test_prose_figures_with_intervals_are_found_in_the_generated_tables() -> None:
    """A figure quoted in the results' prose must be in one of the tables `make table` wrote, so it cannot drift."""
    prose, tables = prose_and_tables(RESULTS.read_text(encoding="utf-8"))
    quoted = set(FIGURE_WITH_INTERVAL.findall(" ".join(prose.split())))  # a figure may wrap across lines
    assert tables.strip(), "docs/results.md has no generated tables"
    assert sorted(figure for figure in quoted if figure not in tables) == []


def test_the_prose_check_sees_a_figure_that_no_table_holds() -> None:
    table = "<!-- table-A:start -->\n| +0.0018 [-0.0017, +0.0054] |\n<!-- table-A:end -->\n"
    text = f"ΔKL +0.0018\n[-0.0017, +0.0053] here.\n{table}"
    prose, tables = prose_and_tables(text)
    quoted = FIGURE_WITH_INTERVAL.findall(" ".join(prose.split()))
    assert quoted == ["+0.0018 [-0.0017, +0.0053]"] and quoted[0] not in tables
