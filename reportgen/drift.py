"""Drift: this build's results manifest compared with an earlier one.

Each build publishes `results/manifest.json` (see reportgen.manifest) and compares it with a
baseline: the previous build's manifest (`.living/manifest.json` beside the cache), or a file or
HTTPS URL given as `drift_baseline` / LIVING_DRIFT_BASELINE (e.g. the published site's manifest).

Collect (`build_manifest`, `load_baseline`, `compare`) is separate from render
(`render_drift_page`, `render_drift_text`). A baseline is optional: whatever goes wrong while
reading one gives "no baseline" and an info line, never a failed or hanging build.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reportgen import markdown as md
from reportgen.fingerprint import git_commit
from reportgen.i18n import DEFAULT, VERDICT_ICONS, Texts, texts_for
from reportgen.manifest import build_manifest, is_manifest, number
from reportgen.pipeline import Log, Outcome
from reportgen.render import RESULTS_DIR
from reportgen.report import text_table
from reportgen.settings import Settings

DRIFT_PAGE = f"{RESULTS_DIR}/drift.md"
FETCH_TIMEOUT_S = 10.0
MAX_MANIFEST_BYTES = 20_000_000


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urllib.parse.urlsplit(newurl).scheme != "https":
            raise urllib.error.URLError(f"redirect to {newurl} refused (HTTPS only)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _fetch(url: str) -> bytes:
    with urllib.request.build_opener(_HttpsOnlyRedirects).open(url, timeout=FETCH_TIMEOUT_S) as response:
        data = response.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ValueError("larger than a manifest can be")
    return bytes(data)


def _quiet(level: str, message: str) -> None:
    pass


def load_baseline(spec: str, log: Log = _quiet) -> dict[str, Any] | None:
    """The manifest at a local path or an https:// URL; None (and an info line) when there is none."""
    if not spec:
        return None
    is_url = "://" in spec
    try:
        if is_url and urllib.parse.urlsplit(spec).scheme.lower() != "https":
            log("info", f"drift: baseline {spec} refused (only https:// URLs are fetched); no baseline")
            return None
        if not is_url and not Path(spec).exists():  # the first build: expected, so said briefly
            log("info", f"drift: no baseline ({spec} does not exist yet)")
            return None
        raw = _fetch(spec) if is_url else Path(spec).read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except Exception as exc:  # offline, 404, timeout, bad JSON…: no baseline, never a failed build
        log("info", f"drift: no baseline ({spec}: {type(exc).__name__}: {exc})")
        return None
    if not is_manifest(data):
        log("info", f"drift: no baseline ({spec} is not a results manifest)")
        return None
    return data


def baseline_source(configured: str, default: Path, root: Path) -> str:
    """The baseline to read: the configured one (a URL, or a path relative to the project), else
    the manifest kept from the previous build."""
    if not configured:
        return str(default)
    if "://" in configured or Path(configured).is_absolute():
        return configured
    return str(root / configured)


def display_source(source: str, root: Path) -> str:
    """A local baseline as a path relative to the project, so the page is the same on every machine."""
    if "://" in source:
        return source
    try:
        return Path(source).resolve().relative_to(root.resolve()).as_posix()
    except (OSError, ValueError):
        return source


def describe_baseline(baseline: dict[str, Any], source: str) -> dict[str, str]:
    commit, date = str(baseline.get("commit") or ""), str(baseline.get("date") or "")
    return {"source": source, "commit": commit, "date": date}


@dataclass(frozen=True)
class Change:
    runner: str
    kind: str  # runner_added|runner_removed|status|device|{metric,claim}_{added,removed,drift}|verdict
    name: str = ""  # the metric or claim id ("" for a change of the whole runner)
    before: Any = None
    after: Any = None


def drifted(before: Any, after: Any, tol: dict[str, float] | None) -> bool:
    """True when the value moved beyond the tolerance (|after − before| > rel·|before| + abs)."""
    if tol is None:
        return False
    b, a = number(before), number(after)
    if b is None or a is None:
        return before != after  # text such as a shape "128x156" must match exactly
    if math.isnan(b) or math.isnan(a):
        return math.isnan(b) != math.isnan(a)
    if math.isinf(b) or math.isinf(a):
        return a != b
    return abs(a - b) > float(tol.get("rel", 0.0)) * abs(b) + float(tol.get("abs", 0.0))


def relative_change(before: Any, after: Any) -> float | None:
    b, a = number(before), number(after)
    if b is None or a is None or not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return None
    return (a - b) / abs(b)


def _items(runner: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    # a baseline is outside data: ignore entries of the wrong shape instead of failing on them
    items = runner.get(section)
    return {str(k): v for k, v in items.items() if isinstance(v, dict)} if isinstance(items, dict) else {}


def _compare_items(runner: str, what: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    field = "value" if what == "metric" else "computed"
    changes = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            changes.append(Change(runner, f"{what}_added", key, None, new[key].get(field)))
        elif key not in new:
            changes.append(Change(runner, f"{what}_removed", key, old[key].get(field), None))
        else:
            before, after = old[key].get(field), new[key].get(field)
            if drifted(before, after, new[key].get("tolerance")):
                changes.append(Change(runner, f"{what}_drift", key, before, after))
            if what == "claim" and old[key].get("verdict") != new[key].get("verdict"):
                verdicts = old[key].get("verdict"), new[key].get("verdict")
                changes.append(Change(runner, "verdict", key, *verdicts))
    return changes


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """What changed from `old` to `new`: runners in `new`'s order, then the runners that are gone."""
    old_by = {r["name"]: r for r in old.get("runners", []) if isinstance(r, dict) and "name" in r}
    new_names = [r["name"] for r in new["runners"]]
    changes: list[Change] = []
    for after in new["runners"]:
        name = after["name"]
        before = old_by.get(name)
        if before is None:
            changes.append(Change(name, "runner_added"))
            continue
        if before.get("status") != after.get("status"):
            changes.append(Change(name, "status", "", before.get("status"), after.get("status")))
        if before.get("status") != "ok" or after.get("status") != "ok":
            continue  # without a result on both sides there are no values to compare
        if before.get("device") != after.get("device"):
            changes.append(Change(name, "device", "", before.get("device"), after.get("device")))
        changes += _compare_items(name, "metric", _items(before, "metrics"), _items(after, "metrics"))
        changes += _compare_items(name, "claim", _items(before, "claims"), _items(after, "claims"))
    changes += [Change(name, "runner_removed") for name in old_by if name not in new_names]
    return changes


@dataclass
class Drift:
    """One build's manifest, its changes since the baseline, and which baseline (None: there was none)."""

    manifest: dict[str, Any]
    changes: list[Change]
    baseline: dict[str, str] | None


def drift_since_baseline(
    outcomes: dict[str, Outcome], settings: Settings, override: str = "", log: Log = _quiet
) -> Drift:
    """This build's manifest compared with the baseline (`override`, else the setting, else the kept one)."""
    manifest = build_manifest(outcomes, git_commit(settings.root))
    source = baseline_source(override or settings.drift_baseline, settings.manifest_file, settings.root)
    baseline = load_baseline(source, log)
    if baseline is None:
        return Drift(manifest, [], None)
    meta = describe_baseline(baseline, display_source(source, settings.root))
    return Drift(manifest, compare(baseline, manifest), meta)


# ---- render ---------------------------------------------------------------------------------


def _value(value: Any) -> str:
    if isinstance(value, float):
        return format(value, ".10g")  # enough digits to see a change of relative 1e-6
    return "—" if value is None else str(value)


def _percent(value: float | None) -> str:
    return "—" if value is None else format(value * 100, "+.3g") + "%"


def _item(change: Change, t: Texts) -> str:
    if change.kind.startswith("claim") or change.kind == "verdict":
        return t("drift.claim", name=change.name)
    return change.name or t("drift.whole")


def _verdict(value: Any, t: Texts) -> str:
    return t.verdict(value) if value in VERDICT_ICONS else _value(value)


def _status(value: Any, t: Texts) -> str:
    # a manifest's statuses, in the words of the run report; anything else (a baseline is outside data) as it is
    return t(f"report.status.{value}") if value in ("ok", "error", "missing") else _value(value)


def drift_sections(changes: list[Change], language: str = DEFAULT) -> list[tuple[str, list[str], list[list[str]]]]:
    """The changes grouped as (heading, header, rows of text), empty groups left out."""
    t = texts_for(language)
    moved, verdicts, comings, states = [], [], [], []
    for c in changes:
        if c.kind.endswith("_drift"):
            rel = _percent(relative_change(c.before, c.after))
            moved.append([c.runner, _item(c, t), _value(c.before), _value(c.after), rel])
        elif c.kind == "verdict":
            verdicts.append([c.runner, _item(c, t), _verdict(c.before, t), _verdict(c.after, t)])
        elif c.kind.endswith(("_added", "_removed")):
            added = c.kind.endswith("_added")
            value = _value(c.after if added else c.before)
            comings.append([c.runner, _item(c, t), t("drift.added" if added else "drift.removed"), value])
        elif c.kind == "status":
            states.append([c.runner, t("col.status"), _status(c.before, t), _status(c.after, t)])
        else:  # device
            states.append([c.runner, t("col.device"), _value(c.before), _value(c.after)])
    runner, before, after = t("col.runner"), t("col.before"), t("col.after")
    sections = [
        (t("drift.moved"), [runner, t("col.metric"), before, after, t("col.relative")], moved),
        (t("drift.verdicts"), [runner, t("col.claim"), before, after], verdicts),
        (t("drift.comings"), [runner, t("col.item"), t("col.change"), t("col.value")], comings),
        (t("drift.states"), [runner, t("col.item"), before, after], states),
    ]
    return [s for s in sections if s[2]]


def _intro(changes: list[Change], meta: dict[str, str] | None, t: Texts) -> list[str]:
    if meta is None:
        return [t("drift.no_baseline")]
    unknown = t("drift.unknown")
    commit, date = meta["commit"][:12] or unknown, t.date(meta["date"], unknown)
    lines = [t("drift.baseline", source=meta["source"], commit=commit, date=date), t("drift.tolerance")]
    return [*lines, t("drift.count", count=len(changes)) if changes else t("drift.unchanged")]


def render_drift_page(changes: list[Change], baseline_meta: dict[str, str] | None, language: str = DEFAULT) -> str:
    t = texts_for(language)
    parts = [f"# {t('drift.title')}", ""]
    for line in _intro(changes, baseline_meta, t):
        parts += [md.text(line), ""]
    parts += [t("drift.manifest"), ""]
    for heading, header, rows in drift_sections(changes, language):
        parts += [f"## {heading}", "", md.table(header, rows, t), ""]
    return "\n".join(parts)


def render_drift_text(changes: list[Change], baseline_meta: dict[str, str] | None, language: str = DEFAULT) -> str:
    parts = [*_intro(changes, baseline_meta, texts_for(language))]
    for heading, header, rows in drift_sections(changes, language):
        parts += ["", heading, text_table(header, rows)]
    return "\n".join(parts) + "\n"
