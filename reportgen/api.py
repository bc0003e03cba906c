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
# Where an item stands on the runner's page: "main" leads it (what the example shows), "body"
# follows, "detail" goes into the collapsed block of machine and implementation details.
Role = Literal["main", "body", "detail"]
ROLES: tuple[Role, ...] = ("main", "body", "detail")

Scalar = float | int | str | bool | None

_NUMBER = re.compile(r"[-+−]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
# Chinese magnitude units that may follow a stated number (parse_stated_number)
_UNITS = {"十": 1, "百": 2, "千": 3, "万": 4, "亿": 8}  # powers of ten
_UNIT_RUN = re.compile(r"\s*([十百千万亿]+)")


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
    """Read the number the article states and the precision a reader gives it.

    Returns (value, tolerance), the tolerance being half a unit in the last significant digit:
    - every digit after a decimal point is significant: "≈ 0.022" is 0.022 ± 0.0005 and "0.5000"
      is 0.5 ± 0.00005; "66.67%" reads as 66.67 (percent units);
    - an integer's trailing zeros are not (they place the digits, as in "1750 亿" or "100 万"):
      "1750" is 1750 ± 5 and "100" is 100 ± 50; zero is ± 0.5. A runner that means an exact
      integer passes `tolerance` to `check_claim`;
    - Chinese magnitude units right after the number scale it and its precision alike (十 10,
      百 100, 千 1000, 万 10⁴, 亿 10⁸, multiplied in a run such as 百万 or 万亿): "15亿" is
      1.5e9 ± 5e7, "1750亿" is 1.75e11 ± 5e8, "1.5万" is 15,000 ± 500, "100万" is 1e6 ± 5e5.
    `stated_reading` gives the same reading in a language-neutral form.
    """
    cleaned = text.replace(",", "")
    match = _NUMBER.search(cleaned)
    if match is None:
        raise ValueError(f"no number in {text!r}")
    token = match.group(0).replace("−", "-")
    mantissa = token.lower().split("e")[0]
    exponent = int(token.lower().split("e")[1]) if "e" in token.lower() else 0
    if "." in mantissa:
        place = -len(mantissa.split(".")[1])  # the last digit's power of ten
    else:
        digits = mantissa.lstrip("+-")
        place = len(digits) - len(digits.rstrip("0")) if digits.strip("0") else 0
    shift = 0  # the power of ten of the units after the number
    units = _UNIT_RUN.match(cleaned, match.end())
    if units:
        shift = sum(_UNITS[unit] for unit in units.group(1))
    # parsed as one decimal literal, so 1.1万 is 11000.0, not 1.1 × 10000 = 11000.000000000002
    value = float(f"{mantissa}e{exponent + shift}")
    return value, 0.5 * 10.0 ** (exponent + place + shift)


def stated_reading(text: str) -> str:
    """How `parse_stated_number` read `text`, language-neutral: "1.75e11 ± 5e8" (the value and half a
    unit of its last significant digit). The errata page phrases it in its own language."""
    value, tolerance = parse_stated_number(text)
    return f"{_neutral_number(value)} ± {_neutral_number(tolerance)}"


def _neutral_number(x: float) -> str:
    """Shortest plain form: 0.022, 1500, 1.75e11, 5e-05 → 5e-5."""
    if x == 0:
        return "0"
    if 1e-4 <= abs(x) < 1e6:
        return format(x, ".12g")
    mantissa, _, exponent = format(x, ".12e").partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


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
    part: str = ""  # which part of the statement this claim checks ("输入门 W_i 的形状"), when it has several
    # how the article's value was read, language-neutral ("1.75e11 ± 5e8": value ± half a unit of its
    # last significant digit, see parse_stated_number; a range "[1e6, 1e10)"); the page phrases it
    reading: str = ""


def check_claim(
    id: str,
    *,
    source: str,
    statement: str,
    article: str,
    computed: Any,
    tolerance: float | None = None,
    reason: str = "",
    part: str = "",
) -> Claim:
    """Compare the article's stated value with ours.

    Numbers agree when |computed - stated| <= tolerance (default: half a unit in the last
    digit the article printed). Strings (shapes such as "128x156") agree when equal after
    removing spaces and case. `part` names what of the statement the claim checks when a
    statement holds several values (the errata page shows the statement once, one row per part).
    """
    computed = plain(computed)
    if isinstance(computed, str):
        same = _normalise_text(computed) == _normalise_text(article)
        return Claim(id, source, statement, article, computed, "agrees" if same else "differs", None, reason, part=part)
    if isinstance(computed, bool) or computed is None:
        raise TypeError(f"claim {id}: computed value must be a number or a string, got {computed!r}")
    stated, stated_tolerance = parse_stated_number(article)
    tol = stated_tolerance if tolerance is None else tolerance
    # a relative epsilon keeps binary rounding (0.1 + 0.2) from flipping a verdict
    agrees = abs(float(computed) - stated) <= tol * (1 + 1e-9) + 1e-12
    return Claim(id, source, statement, article, computed, "agrees" if agrees else "differs", tol, reason, part=part,
                 reading=stated_reading(article))


def _role(role: str) -> Role:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role  # type: ignore[return-value]


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Scalar]]
    caption: str = ""
    title: str = ""  # the reader's heading (the name stays the key for placeholders)
    role: Role = "body"


@dataclass
class Figure:
    path: str  # relative to the runner's output directory
    caption: str = ""  # also the image's alt text
    title: str = ""
    role: Role = "body"


@dataclass
class Series:
    x_label: str
    x: list[float]
    ys: dict[str, list[float]]
    caption: str = ""
    title: str = ""


@dataclass
class TextInfo:
    """How a captured text is presented: its heading, a sentence about it, and where it stands."""

    title: str = ""
    caption: str = ""
    role: Role = "body"


@dataclass
class MetricInfo:
    """A metric's readable label and unit (e.g. "测试准确率", "%"), and where it stands."""

    label: str = ""
    unit: str = ""
    role: Role = "body"


@dataclass
class Graph:
    """An architecture as data: nodes in call order and edges between them (rendered as Mermaid)."""

    nodes: list[dict[str, Scalar]]  # each: {"id", "label", "detail"} (detail: shape, parameters)
    edges: list[list[str]]  # [from_id, to_id]
    caption: str = ""
    title: str = ""
    role: Role = "body"


@dataclass
class Result:
    """Everything a runner found. Build it with the small helper methods below.

    Tables, figures, texts and graphs take a reader's `title` (the page's heading for the item; the
    name stays the key for placeholders), a `caption` (for a figure, also its alt text) and a
    `role`: "main" items lead the runner's page, "detail" items (machine and implementation
    details) go into its collapsed details block. Metrics take a readable `label` and `unit`.
    The page lists items in the order the runner declared them.
    """

    metrics: dict[str, Scalar] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    graphs: dict[str, Graph] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    text_info: dict[str, TextInfo] = field(default_factory=dict)  # by text name, for those declared with one
    metric_info: dict[str, MetricInfo] = field(default_factory=dict)  # by metric name, likewise

    def metric(self, name: str, value: Any, *, label: str = "", unit: str = "", role: Role = "body") -> Any:
        self.metrics[name] = plain(value)
        if label or unit or role != "body":
            self.metric_info[name] = MetricInfo(label, unit, _role(role))
        return value

    def table(
        self, name: str, columns: list[str], rows: list[list[Any]], caption: str = "", *, title: str = "", role: Role = "body"
    ) -> None:
        self.tables[name] = Table(list(columns), [plain(list(r)) for r in rows], caption, title, _role(role))

    def figure(self, name: str, path: str, caption: str = "", *, title: str = "", role: Role = "body") -> None:
        self.figures[name] = Figure(path, caption, title, _role(role))

    def add_series(
        self, name: str, x_label: str, x: Any, ys: dict[str, Any], caption: str = "", *, title: str = ""
    ) -> None:
        ys_plain = {k: plain(list(v)) for k, v in ys.items()}
        self.series[name] = Series(x_label, plain(list(x)), ys_plain, caption, title)

    def text(self, name: str, value: str, *, title: str = "", caption: str = "", role: Role = "body") -> None:
        self.texts[name] = value
        if title or caption or role != "body":
            self.text_info[name] = TextInfo(title, caption, _role(role))

    def graph(
        self, name: str, nodes: list[dict[str, Any]], edges: list[list[str]], caption: str = "", *,
        title: str = "", role: Role = "body",
    ) -> None:
        ids = {str(n["id"]) for n in nodes}
        dangling = [e for e in edges if e[0] not in ids or e[1] not in ids]
        if dangling:
            raise ValueError(f"graph {name}: edges name unknown nodes: {dangling}")
        nodes_plain, edges_str = [plain(dict(n)) for n in nodes], [[str(a), str(b)] for a, b in edges]
        self.graphs[name] = Graph(nodes_plain, edges_str, caption, title, _role(role))

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
        self, id: str, verdict: Verdict, *, source: str, statement: str, article: str, reason: str, computed: Any = None,
        part: str = "",
    ) -> Claim:
        claim = Claim(id, source, statement, article, plain(computed), verdict, None, reason, part=part)
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
