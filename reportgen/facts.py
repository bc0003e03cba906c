"""Checkable facts that no runner can compute (a paper's year, a person's career), with citations.

They live in `docs/facts.yml` (editorial data beside the article) and are shown where the page
says `{{ fact: ID }}` and on the errata page; the article's own text is never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

FACT_VERDICTS = ("agrees", "differs")


class FactsError(ValueError):
    pass


@dataclass(frozen=True)
class Citation:
    title: str
    url: str


@dataclass(frozen=True)
class Fact:
    id: str
    source: str
    statement: str
    verdict: str
    correction: str
    citations: tuple[Citation, ...]


def load_facts(path: Path) -> dict[str, Fact]:
    """Read and check the facts file; a missing file means no facts."""
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as exc:
        raise FactsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, list):
        raise FactsError(f"{path}: expected a list of facts")
    facts: dict[str, Fact] = {}
    for number, item in enumerate(raw, start=1):
        where = f"{path.name} item {number}"
        if not isinstance(item, dict):
            raise FactsError(f"{where}: expected a mapping")
        missing = [k for k in ("id", "source", "statement", "verdict", "correction") if not item.get(k)]
        if missing:
            raise FactsError(f"{where}: missing {', '.join(missing)}")
        if item["verdict"] not in FACT_VERDICTS:
            raise FactsError(f"{where}: verdict must be one of {FACT_VERDICTS}, not {item['verdict']!r}")
        if str(item["id"]) in facts:
            raise FactsError(f"{where}: duplicate id {item['id']!r}")
        citations = []
        for cite in item.get("citations") or []:
            if not isinstance(cite, dict) or not str(cite.get("url") or "").startswith(("https://", "http://")):
                raise FactsError(f"{where}: each citation needs a title and an http(s) url")
            citations.append(Citation(str(cite.get("title") or cite["url"]), str(cite["url"])))
        if not citations:
            raise FactsError(f"{where}: a fact needs at least one citation a reader can follow")
        facts[str(item["id"])] = Fact(
            id=str(item["id"]),
            source=str(item["source"]),
            statement=str(item["statement"]),
            verdict=str(item["verdict"]),
            correction=str(item["correction"]),
            citations=tuple(citations),
        )
    return facts
