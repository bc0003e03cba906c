"""What a runner returns: plain data (metrics, tables, figures, texts, claims).

This module knows nothing about HTML, Markdown or MkDocs and imports neither torch nor numpy,
so `reportgen` can read the registry without paying for them. `reportgen` turns the JSON form
of a `Result` (see `Result.to_json`) into pages.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["agrees", "differs", "not_computable", "contradictory"]
VERDICTS: tuple[Verdict, ...] = ("agrees", "differs", "not_computable", "contradictory")

Scalar = float | int | str | bool | None

_NUMBER = re.compile(r"[-+−]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def plain(value: Any) -> Any:
    """Convert numpy/torch scalars, tuples and non-finite floats to JSON-safe Python values.

    Non-finite floats become the strings "nan", "inf", "-inf" so the JSON stays strict.
    """
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if hasattr(value, "tolist") and callable(value.tolist):
        value = value.tolist()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in a result: {value!r}")


def parse_stated_number(text: str) -> tuple[float, float]:
    """Read the number the article states and the precision it was stated with.

    Returns (value, tolerance): the tolerance is half a unit in the last stated digit, so
    "≈ 0.022" agrees with anything that rounds to 0.022. "66.67%" reads as 66.67 (percent units).
    """
    match = _NUMBER.search(text.replace(",", ""))
    if match is None:
        raise ValueError(f"no number in {text!r}")
    token = match.group(0).replace("−", "-")
    mantissa = token.lower().split("e")[0]
    exponent = int(token.lower().split("e")[1]) if "e" in token.lower() else 0
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return float(token), 0.5 * 10.0 ** (exponent - decimals)


def _normalise_text(text: str) -> str:
    return re.sub(r"\s+", "", text).replace("×", "x").replace("X", "x").lower()


@dataclass
class Claim:
    """One checkable statement of the article and what the runner found.

    `article` is the value as the article prints it; `computed` is ours (None when it
    cannot be computed). `statement` quotes the article's sentence so the errata page
    can show it; `reason` explains any verdict other than a plain agreement.
    """

    id: str
    source: str
    statement: str
    article: str
    computed: Scalar
    verdict: Verdict
    tolerance: float | None = None
    reason: str = ""


def check_claim(
    id: str,
    *,
    source: str,
    statement: str,
    article: str,
    computed: Any,
    tolerance: float | None = None,
    reason: str = "",
) -> Claim:
    """Compare the article's stated value with ours.

    Numbers agree when |computed - stated| <= tolerance (default: half a unit in the last
    digit the article printed). Strings (shapes such as "128x156") agree when equal after
    removing spaces and case.
    """
    computed = plain(computed)
    if isinstance(computed, str):
        same = _normalise_text(computed) == _normalise_text(article)
        return Claim(id, source, statement, article, computed, "agrees" if same else "differs", None, reason)
    if isinstance(computed, bool) or computed is None:
        raise TypeError(f"claim {id}: computed value must be a number or a string, got {computed!r}")
    stated, stated_tolerance = parse_stated_number(article)
    tol = stated_tolerance if tolerance is None else tolerance
    # a relative epsilon keeps binary rounding (0.1 + 0.2) from flipping a verdict
    agrees = abs(float(computed) - stated) <= tol * (1 + 1e-9) + 1e-12
    return Claim(id, source, statement, article, computed, "agrees" if agrees else "differs", tol, reason)


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Scalar]]
    caption: str = ""


@dataclass
class Figure:
    path: str  # relative to the runner's output directory
    caption: str = ""


@dataclass
class Series:
    x_label: str
    x: list[float]
    ys: dict[str, list[float]]
    caption: str = ""


@dataclass
class Graph:
    """An architecture as data: nodes in call order and edges between them (rendered as Mermaid)."""

    nodes: list[dict[str, Scalar]]  # each: {"id", "label", "detail"} (detail: shape, parameters)
    edges: list[list[str]]  # [from_id, to_id]
    caption: str = ""


@dataclass
class Result:
    """Everything a runner found. Build it with the small helper methods below."""

    metrics: dict[str, Scalar] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    graphs: dict[str, Graph] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)

    def metric(self, name: str, value: Any) -> Any:
        self.metrics[name] = plain(value)
        return value

    def table(self, name: str, columns: list[str], rows: list[list[Any]], caption: str = "") -> None:
        self.tables[name] = Table(list(columns), [plain(list(r)) for r in rows], caption)

    def figure(self, name: str, path: str, caption: str = "") -> None:
        self.figures[name] = Figure(path, caption)

    def add_series(self, name: str, x_label: str, x: Any, ys: dict[str, Any], caption: str = "") -> None:
        self.series[name] = Series(x_label, plain(list(x)), {k: plain(list(v)) for k, v in ys.items()}, caption)

    def text(self, name: str, value: str) -> None:
        self.texts[name] = value

    def graph(self, name: str, nodes: list[dict[str, Any]], edges: list[list[str]], caption: str = "") -> None:
        ids = {str(n["id"]) for n in nodes}
        dangling = [e for e in edges if e[0] not in ids or e[1] not in ids]
        if dangling:
            raise ValueError(f"graph {name}: edges name unknown nodes: {dangling}")
        self.graphs[name] = Graph([plain(dict(n)) for n in nodes], [[str(a), str(b)] for a, b in edges], caption)

    def check(self, id: str, **kwargs: Any) -> Claim:
        """Record a numeric or textual claim; see `check_claim` for the arguments."""
        claim = check_claim(id, **kwargs)
        self.claims.append(claim)
        return claim

    def not_computable(self, id: str, **kwargs: Any) -> Claim:
        """The article states a value that cannot be computed from what it gives (say why):
        keywords source, statement, article, reason, and optionally computed."""
        return self._judged(id, "not_computable", **kwargs)

    def contradictory(self, id: str, **kwargs: Any) -> Claim:
        """The article's own statements contradict each other (say which and how); the keywords
        of `not_computable`."""
        return self._judged(id, "contradictory", **kwargs)

    def _judged(
        self, id: str, verdict: Verdict, *, source: str, statement: str, article: str, reason: str, computed: Any = None
    ) -> Claim:
        claim = Claim(id, source, statement, article, plain(computed), verdict, None, reason)
        self.claims.append(claim)
        return claim

    def to_json(self) -> dict[str, Any]:
        ids = [c.id for c in self.claims]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"claim ids must be unique within a runner: {duplicated}")
        data = asdict(self)
        data["claims"] = [asdict(c) for c in self.claims]
        return plain(data)
