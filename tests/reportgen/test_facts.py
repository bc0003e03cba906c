"""reportgen.facts: the facts file is checked on load, and the project's facts are all placed."""

from __future__ import annotations

from pathlib import Path

import pytest

from reportgen.facts import Citation, Fact, FactsError, load_facts
from reportgen.inline import references

REPO = Path(__file__).resolve().parents[2]

VALID = """
- id: jia_phd
  source: "000 §1.2"
  statement: "清华大学博士"
  verdict: differs
  correction: "博士学位获得于 UC Berkeley。"
  citations:
    - title: "arXiv:1408.5093"
      url: "https://arxiv.org/abs/1408.5093"
    - url: "http://example.org/x"
- id: dbn_year
  source: "000 §2.2.1"
  statement: "2006年 DBN"
  verdict: agrees
  correction: "2006 年发表。"
  citations:
    - {title: "Hinton 2006", url: "https://example.org/dbn"}
"""

ONE = 'source: s, statement: t, verdict: agrees, correction: c, citations: [{title: x, url: "https://a.org"}]'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "facts.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_valid_file(tmp_path: Path) -> None:
    facts = load_facts(write(tmp_path, VALID))
    assert list(facts) == ["jia_phd", "dbn_year"]
    assert facts["jia_phd"] == Fact(
        id="jia_phd",
        source="000 §1.2",
        statement="清华大学博士",
        verdict="differs",
        correction="博士学位获得于 UC Berkeley。",
        citations=(
            Citation("arXiv:1408.5093", "https://arxiv.org/abs/1408.5093"),
            Citation("http://example.org/x", "http://example.org/x"),  # title defaults to the url
        ),
    )
    assert facts["dbn_year"].verdict == "agrees"


def test_missing_or_empty_file_means_no_facts(tmp_path: Path) -> None:
    assert load_facts(tmp_path / "absent.yml") == {}
    assert load_facts(write(tmp_path, "")) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- id: [unclosed\n", "not valid YAML"),
        ("a: 1\n", "expected a list of facts"),
        ("- just a string\n", "item 1: expected a mapping"),
        (
            f"- {{id: a, {ONE}}}\n- {{id: b, verdict: agrees}}\n",
            "item 2: missing source, statement, correction",
        ),
        ("- {id: a, source: s, statement: t, verdict: wrong, correction: c}\n", "verdict must be one of"),
        (f"- {{id: a, {ONE}}}\n- {{id: a, {ONE}}}\n", "item 2: duplicate id 'a'"),
        (
            "- {id: a, source: s, statement: t, verdict: agrees, correction: c, citations: [{title: x, url: ftp://x}]}",
            "http\\(s\\) url",
        ),
        (
            "- {id: a, source: s, statement: t, verdict: agrees, correction: c, citations: [{title: x}]}",
            "http\\(s\\) url",
        ),
        (
            "- {id: a, source: s, statement: t, verdict: agrees, correction: c, citations: [https://x.org]}",
            "http\\(s\\) url",
        ),
        ("- {id: a, source: s, statement: t, verdict: agrees, correction: c}", "at least one citation"),
        (
            "- {id: a, source: s, statement: t, verdict: agrees, correction: c, citations: []}",
            "at least one citation",
        ),
    ],
    ids=[
        "yaml",
        "not-list",
        "not-mapping",
        "missing",
        "verdict",
        "duplicate",
        "ftp",
        "no-url",
        "bare-url",
        "no-citations",
        "empty-citations",
    ],
)
def test_invalid_files_raise(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(FactsError, match=message):
        load_facts(write(tmp_path, text))


def test_null_url_is_a_facts_error(tmp_path: Path) -> None:
    text = (
        "- {id: a, source: s, statement: t, verdict: agrees, correction: c, citations: [{title: x, url: }]}"
    )
    with pytest.raises(FactsError):
        load_facts(write(tmp_path, text))


def test_duplicate_numeric_id_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FactsError, match="duplicate id"):
        load_facts(write(tmp_path, f"- {{id: 5, {ONE}}}\n- {{id: 5, {ONE}}}\n"))


def test_project_facts_and_placeholders_match() -> None:
    facts = load_facts(REPO / "docs" / "facts.yml")
    assert facts, "docs/facts.yml should hold the article's checked facts"
    placed: dict[str, list[str]] = {}
    for page in sorted((REPO / "docs").rglob("*.md")):
        for kind, ref in references(page.read_text(encoding="utf-8")):
            if kind == "fact":
                placed.setdefault(ref, []).append(page.relative_to(REPO).as_posix())
    unused = sorted(set(facts) - set(placed))
    unknown = {ref: pages for ref, pages in placed.items() if ref not in facts}
    assert unused == [], f"facts never shown with {{{{ fact: ID }}}}: {unused}"
    assert unknown == {}, f"placeholders naming no fact: {unknown}"
