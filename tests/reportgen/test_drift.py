"""reportgen.drift and reportgen.manifest: the results manifest, baselines, changes and the drift page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from reportgen import drift
from reportgen.cli import main
from reportgen.drift import Change, compare, load_baseline, render_drift_page, render_drift_text
from reportgen.fingerprint import Fingerprint
from reportgen.i18n import texts_for
from reportgen.manifest import build_manifest, manifest_text, tolerance
from reportgen.pipeline import Outcome
from reportgen.spec import RunnerSpec
from reportgen.store import Entry

ZH = texts_for("zh")
NO_BASELINE, TOLERANCE_NOTE = ZH("drift.no_baseline"), ZH("drift.tolerance")

EXACT = {"abs": 1e-12, "rel": 1e-6}
TRAIN = {"abs": 1e-9, "rel": 0.02}


def outcome(name: str, record: dict[str, Any] | None, uses_device: bool = False, origin: str = "cache") -> Outcome:
    spec = RunnerSpec(name, f"runners.{name}", name.title(), "§1", uses_device=uses_device)
    entry = Entry(record, Path("/nowhere")) if record is not None else None
    return Outcome(spec, Fingerprint("c" * 64, "e" * 64, {}), entry, origin)


def record(metrics: dict[str, Any], claims: list[dict[str, Any]] | None = None, **prov: Any) -> dict[str, Any]:
    return {
        "status": "ok",
        "code_hash": "c1",
        "env_hash": "e1",
        "key": "c1-e1",
        "provenance": {"device": "cpu", "finished_at": "2026-01-02T00:00:00Z", "wall_time_s": 1.5, **prov},
        "result": {"metrics": metrics, "claims": claims or []},
    }


def runner(name: str, metrics: dict[str, Any], claims: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A runner entry of a hand-made manifest (values with the walk-through tolerance)."""
    entry = {"name": name, "status": "ok", "device": "cpu", "finished_at": "2026-01-01T00:00:00Z"}
    entry["metrics"] = {k: {"value": v, "tolerance": EXACT} for k, v in metrics.items()}
    entry["claims"] = claims or {}
    return {**entry, **extra}


def manifest(*runners: dict[str, Any], commit: str = "abcdef1234567890", date: str = "2026-01-01T00:00:00Z") -> dict:
    return {"format": 1, "commit": commit, "date": date, "runners": list(runners)}


def claim(computed: Any, verdict: str, tol: dict[str, float] | None = EXACT) -> dict[str, Any]:
    return {"computed": computed, "verdict": verdict, "tolerance": tol}


def test_tolerance_is_one_rule() -> None:
    assert tolerance("sigmoid", uses_device=False) == EXACT
    assert tolerance("test_accuracy", uses_device=True) == TRAIN
    assert tolerance("train_seconds", uses_device=True) is None  # a timing measures the machine


def test_build_manifest_keeps_numbers_claims_and_provenance() -> None:
    claims = [{"id": "sig", "computed": 0.1192, "verdict": "differs", "source": "s", "statement": "", "article": "0.022"}]
    metrics = {"x": -2, "ratio": 0.5, "bad": "nan", "ok": True, "label": "text", "train_seconds": 3.0}
    outcomes = {
        "alpha": outcome("alpha", record(metrics, claims)),
        "cnn": outcome("cnn", record({"acc": 0.98}, finished_at="2026-01-03T00:00:00Z", device="cuda"), True),
        "gone": outcome("gone", None, origin="missing"),
    }
    built = build_manifest(outcomes, commit="f00")
    assert built == {
        "format": 1,
        "commit": "f00",
        "date": "2026-01-03T00:00:00Z",
        "runners": [
            {
                "name": "alpha",
                "status": "ok",
                "code_hash": "c1",
                "env_hash": "e1",
                "key": "c1-e1",
                "device": "cpu",
                "finished_at": "2026-01-02T00:00:00Z",
                "metrics": {
                    "bad": {"value": "nan", "tolerance": EXACT},
                    "ratio": {"value": 0.5, "tolerance": EXACT},
                    "train_seconds": {"value": 3.0, "tolerance": None},
                    "x": {"value": -2, "tolerance": EXACT},
                },
                "claims": {"sig": {"computed": 0.1192, "verdict": "differs", "tolerance": EXACT}},
            },
            {
                "name": "cnn",
                "status": "ok",
                "code_hash": "c1",
                "env_hash": "e1",
                "key": "c1-e1",
                "device": "cuda",
                "finished_at": "2026-01-03T00:00:00Z",
                "metrics": {"acc": {"value": 0.98, "tolerance": TRAIN}},
                "claims": {},
            },
            {
                "name": "gone",
                "status": "missing",
                "code_hash": None,
                "env_hash": None,
                "key": None,
                "device": None,
                "finished_at": None,
                "metrics": {},
                "claims": {},
            },
        ],
    }
    assert json.loads(manifest_text(built)) == built  # strict JSON, deterministic text
    assert manifest_text(built) == manifest_text(build_manifest(outcomes, commit="f00"))


def test_values_within_tolerance_are_not_changes() -> None:
    old = manifest(runner("a", {"x": 1.0, "zero": 0.0, "noise": 2.7e-16}))
    new = manifest(runner("a", {"x": 1.0 + 5e-7, "zero": 1e-13, "noise": 3.1e-16}))
    assert compare(old, new) == []


def test_values_beyond_tolerance_new_and_removed() -> None:
    old = manifest(runner("a", {"x": 1.0, "gone": 2.0, "n": "nan"}), runner("old", {}))
    new = manifest(runner("a", {"x": 1.00001, "added": 3, "n": 0.5}), runner("fresh", {}))
    assert compare(old, new) == [
        Change("a", "metric_added", "added", None, 3),
        Change("a", "metric_removed", "gone", 2.0, None),
        Change("a", "metric_drift", "n", "nan", 0.5),
        Change("a", "metric_drift", "x", 1.0, 1.00001),
        Change("fresh", "runner_added"),
        Change("old", "runner_removed"),
    ]


def test_training_tolerance_and_timings() -> None:
    def train(acc: float, seconds: float) -> dict[str, Any]:
        metrics = {"acc": {"value": acc, "tolerance": TRAIN}, "train_seconds": {"value": seconds, "tolerance": None}}
        return {**runner("cnn", {}), "metrics": metrics}

    assert compare(manifest(train(0.90, 10.0)), manifest(train(0.91, 99.0))) == []  # +1.1 %
    assert compare(manifest(train(0.90, 10.0)), manifest(train(0.93, 10.0))) == [
        Change("cnn", "metric_drift", "acc", 0.90, 0.93)
    ]


def test_claims_values_verdicts_status_and_device() -> None:
    old = manifest(
        runner("a", {}, {"sig": claim(0.1192, "differs"), "shape": claim("128x156", "agrees", None)}),
        runner("b", {"x": 1.0}),
        runner("c", {"x": 1.0}),
    )
    new = manifest(
        runner("a", {}, {"sig": claim(0.022, "agrees"), "shape": claim("128x157", "differs", None), "new": claim(1, "agrees")}),
        runner("b", {}, status="error"),
        runner("c", {"x": 1.0}, device="cuda"),
    )
    assert compare(old, new) == [
        Change("a", "claim_added", "new", None, 1),
        Change("a", "verdict", "shape", "agrees", "differs"),  # no tolerance: the value is not compared
        Change("a", "claim_drift", "sig", 0.1192, 0.022),
        Change("a", "verdict", "sig", "differs", "agrees"),
        Change("b", "status", "", "ok", "error"),  # no metric-by-metric removals for a failed runner
        Change("c", "device", "", "cpu", "cuda"),
    ]


def test_drift_page_exact() -> None:
    changes = [
        Change("a", "metric_drift", "x_1", 1.0, 1.025),
        Change("a", "metric_added", "new", None, 3),
        Change("a", "verdict", "sig", "differs", "agrees"),
        Change("b", "runner_removed"),
        Change("c", "status", "", "ok", "error"),
    ]
    meta = {"source": ".living/manifest.json", "commit": "abcdef1234567890", "date": "2026-01-01T00:00:00Z"}
    assert render_drift_page(changes, meta) == "\n".join(
        [
            "# 结果漂移",
            "",
            "基线：.living/manifest.json（提交 abcdef123456，其中最新的结果完成于 2026年1月1日 00:00 UTC）。",
            "",
            TOLERANCE_NOTE.replace("_", "&#95;"),
            "",
            "与基线相比有 5 处变化。",
            "",
            "本次构建的结果清单（机器可读）：[manifest.json](manifest.json)。",
            "",
            "## 超出容差的数值变化",
            "",
            "| 运行器 | 指标 | 之前 | 之后 | 相对变化 |",
            "|---|---|---|---|---|",
            "| a | x&#95;1 | 1 | 1.025 | +2.5% |",
            "",
            "## 核对结论的变化",
            "",
            "| 运行器 | 核对 | 之前 | 之后 |",
            "|---|---|---|---|",
            "| a | 核对 sig | ✗ 不符 | ✓ 相符 |",
            "",
            "## 新增与移除",
            "",
            "| 运行器 | 项目 | 变化 | 值 |",
            "|---|---|---|---|",
            "| a | new | 新增 | 3 |",
            "| b | （整个运行器） | 移除 | — |",
            "",
            "## 运行状态与设备",
            "",
            "| 运行器 | 项目 | 之前 | 之后 |",
            "|---|---|---|---|",
            "| c | 状态 | 成功 | 失败 |",
            "",
        ]
    )


def test_drift_page_in_english() -> None:
    changes = [Change("a", "verdict", "sig", "differs", "agrees"), Change("b", "runner_removed"),
               Change("c", "status", "", "ok", "error")]
    meta = {"source": "m.json", "commit": "abcdef1234567890", "date": "2026-01-01T00:00:00Z"}
    page = render_drift_page(changes, meta, "en")
    assert page.startswith(
        "# Result drift\n\n"
        "Baseline: m.json (commit abcdef123456; its newest result finished 1 January 2026, 00:00 UTC).\n\n"
    )
    assert "Changes since the baseline: 3.\n\nThis build's results manifest (machine-readable): [manifest.json]" in page
    assert page.endswith(
        "## Changed verdicts\n\n| Runner | Claim | Before | After |\n|---|---|---|---|\n"
        "| a | claim sig | ✗ differs | ✓ agrees |\n\n"
        "## Added and removed\n\n| Runner | Item | Change | Value |\n|---|---|---|---|\n"
        "| b | (the whole runner) | removed | — |\n\n"
        "## Run status and device\n\n| Runner | Item | Before | After |\n|---|---|---|---|\n"
        "| c | Status | ok | failed |\n"
    )
    assert render_drift_text([], None, "en").startswith("No baseline to compare with")


def test_drift_text_when_nothing_changed_and_without_baseline() -> None:
    meta = {"source": "https://example.org/results/manifest.json", "commit": "", "date": ""}
    assert render_drift_text([], meta) == (
        "基线：https://example.org/results/manifest.json（提交 未知，其中最新的结果完成于 未知）。\n"
        f"{TOLERANCE_NOTE}\n"
        "自基线以来没有变化：所有数值都在容差之内，运行器、指标和核对结论都与基线相同。\n"
    )
    assert render_drift_text([], None) == NO_BASELINE + "\n"
    page = render_drift_page([], None)
    assert page.startswith("# 结果漂移\n\n没有可比较的基线（no baseline）")


def test_text_table_lines_up_chinese() -> None:
    text = render_drift_text([Change("a", "metric_drift", "x", 2.0, 1.0)], {"source": "f", "commit": "c", "date": "d"})
    assert text.endswith(
        "\n\n超出容差的数值变化\n"
        "运行器  指标  之前  之后  相对变化\n"
        "------  ----  ----  ----  --------\n"
        "a       x     2     1     -50%\n"
    )


class Logged(list):
    def __call__(self, level: str, message: str) -> None:
        self.append((level, message))


def test_load_baseline_from_a_file(tmp_path: Path) -> None:
    good = manifest(runner("a", {"x": 1.0}))
    (tmp_path / "m.json").write_text(json.dumps(good), encoding="utf-8")
    assert load_baseline(str(tmp_path / "m.json")) == good
    assert load_baseline("") is None


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "JSONDecodeError"),
        (b"\xff\xfe", "UnicodeDecodeError"),
        (b'{"format": 2, "runners": []}', "is not a results manifest"),
        (None, "does not exist yet"),
    ],
)
def test_unreadable_baseline_is_no_baseline(tmp_path: Path, content: bytes | None, why: str) -> None:
    path = tmp_path / "m.json"
    if content is not None:
        path.write_bytes(content)
    log = Logged()
    assert load_baseline(str(path), log) is None
    assert len(log) == 1 and log[0][0] == "info" and why in log[0][1]


def test_baseline_urls_are_https_only(monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[str] = []

    def fake_fetch(url: str) -> bytes:
        fetched.append(url)
        return json.dumps(manifest()).encode()

    monkeypatch.setattr(drift, "_fetch", fake_fetch)
    log = Logged()
    assert load_baseline("http://example.org/results/manifest.json", log) is None
    assert load_baseline("file:///etc/passwd", log) is None
    assert fetched == []  # refused before any connection
    assert log == [
        ("info", "drift: baseline http://example.org/results/manifest.json refused (only https:// URLs are fetched); no baseline"),
        ("info", "drift: baseline file:///etc/passwd refused (only https:// URLs are fetched); no baseline"),
    ]
    assert load_baseline("https://example.org/results/manifest.json") == manifest()
    assert fetched == ["https://example.org/results/manifest.json"]


def test_unreachable_url_is_no_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str) -> bytes:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(drift, "_fetch", offline)
    log = Logged()
    assert load_baseline("https://example.org/m.json", log) is None
    assert log == [("info", "drift: no baseline (https://example.org/m.json: URLError: <urlopen error no network>)")]


def test_redirect_to_http_is_refused() -> None:
    handler = drift._HttpsOnlyRedirects()
    with pytest.raises(urllib.error.URLError, match="HTTPS only"):
        handler.redirect_request(None, None, 302, "Found", {}, "http://example.org/m.json")


# ---- the plugin and the command line on the toy project --------------------------------------------


def mkdocs_build(root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-d", str(root / "site")],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", **(env or {})},
        timeout=300,
    )


def test_build_publishes_manifest_and_compares_with_the_previous_build(toy_project: Path) -> None:
    first = mkdocs_build(toy_project)
    assert first.returncode == 0, first.stderr
    kept = toy_project / ".living" / "manifest.json"
    published = toy_project / "site" / "results" / "manifest.json"
    assert kept.read_text(encoding="utf-8") == published.read_text(encoding="utf-8")
    assert "没有可比较的基线" in (toy_project / "site" / "results" / "drift" / "index.html").read_text()
    # nav: the report page comes first after the overview, then drift, then the runner pages
    overview = (toy_project / "site" / "results" / "index.html").read_text(encoding="utf-8")
    at = [overview.find(f'<a href="{p}/" class="md-nav__link">') for p in ("report", "drift", "alpha", "beta")]
    assert -1 not in at and at == sorted(at), at

    mtime = kept.stat().st_mtime_ns
    second = mkdocs_build(toy_project)
    assert second.returncode == 0, second.stderr
    assert kept.stat().st_mtime_ns == mtime  # unchanged results: the kept manifest is not rewritten
    assert "自基线以来没有变化" in (toy_project / "site" / "results" / "drift" / "index.html").read_text()

    edited = json.loads(kept.read_text(encoding="utf-8"))
    edited["runners"][0]["metrics"]["square"]["value"] = 5.0
    (toy_project / "baseline.json").write_text(json.dumps(edited), encoding="utf-8")
    third = mkdocs_build(toy_project, {"LIVING_DRIFT_BASELINE": "baseline.json"})
    assert third.returncode == 0, third.stderr
    page = (toy_project / "site" / "results" / "drift" / "index.html").read_text(encoding="utf-8")
    assert "baseline.json" in page and "square" in page and "-20%" in page
    offline = mkdocs_build(toy_project, {"LIVING_DRIFT_BASELINE": "http://127.0.0.1:9/manifest.json"})
    assert offline.returncode == 0, offline.stderr  # refused, not fetched: no baseline, no warning
    assert "refused (only https:// URLs are fetched)" in offline.stderr
    assert "WARNING -  drift" not in offline.stderr


def test_cli_manifest_and_drift(toy_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = ["--project", str(toy_project)]
    assert main([*root, "run"]) == 0
    out = tmp_path / "m.json"
    assert main([*root, "manifest", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main([*root, "drift", "--baseline", str(out), "--fail-on-drift"]) == 0
    assert "自基线以来没有变化" in capsys.readouterr().out
    edited = json.loads(out.read_text(encoding="utf-8"))
    edited["runners"][1]["metrics"]["double"]["value"] = 7
    out.write_text(json.dumps(edited), encoding="utf-8")
    assert main([*root, "drift", "--baseline", str(out)]) == 0
    assert main([*root, "drift", "--baseline", str(out), "--fail-on-drift"]) == 1
    text = capsys.readouterr().out
    assert "beta    double  7     6     -14.3%" in text
    assert main([*root, "drift", "--baseline", "http://example.org/m.json", "--fail-on-drift"]) == 0
    captured = capsys.readouterr()
    assert captured.out == NO_BASELINE + "\n" and "refused" in captured.err
