"""The manifest of one build's results: machine-readable, published as `results/manifest.json`.

For each runner (in the registry's order): its status, code and environment hashes, cache key,
device and finish time, every numeric metric and each claim's computed value and verdict, each
with the tolerance within which a later build counts as unchanged (see `tolerance`).
"""

from __future__ import annotations

import json
from typing import Any

from reportgen.pipeline import Outcome
from reportgen.render import RESULTS_DIR

MANIFEST_URI = f"{RESULTS_DIR}/manifest.json"
TIMING_SUFFIXES = ("seconds", "_time_s", "_per_s", "_per_second")
MANIFEST_FORMAT = 1


def tolerance(metric: str, uses_device: bool) -> dict[str, float] | None:
    """How far a value may move between builds before it counts as drift: the one rule.

    Walk-throughs run on the CPU in float64 and repeat to the last bits, so relative 1e-6
    catches any real change. Training (`uses_device`) varies with the hardware, library versions
    and nondeterministic kernels: relative 2 %. The absolute floor keeps rounding noise near zero
    (max |numpy − torch| ≈ 1e-16) from counting. Timings measure the machine, not the result,
    so they are never compared (None).
    """
    if metric.endswith(TIMING_SUFFIXES):
        return None
    if uses_device:
        return {"abs": 1e-9, "rel": 0.02}
    return {"abs": 1e-12, "rel": 1e-6}


def number(value: Any) -> float | None:
    """A metric as a float; non-finite floats are stored as "nan"/"inf"/"-inf" (strict JSON)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return None


def build_manifest(outcomes: dict[str, Outcome], commit: str = "") -> dict[str, Any]:
    """Everything the next build compares with, in the registry's order.

    Deterministic: it holds no build time, only the commit and the newest result's finish time,
    so a rebuild with nothing changed rewrites nothing.
    """
    runners = []
    for outcome in outcomes.values():
        record = outcome.entry.record if outcome.entry is not None else {}
        prov = record.get("provenance") or {}
        result = record.get("result") or {}
        uses_device = outcome.spec.uses_device
        metrics = {
            name: {"value": value, "tolerance": tolerance(name, uses_device)}
            for name, value in sorted((result.get("metrics") or {}).items())
            if number(value) is not None
        }
        claims = {
            str(c["id"]): {
                "computed": c.get("computed"),
                "verdict": c.get("verdict"),
                "tolerance": tolerance(str(c["id"]), uses_device),
            }
            for c in result.get("claims") or []
        }
        runners.append(
            {
                "name": outcome.spec.name,
                "status": record.get("status", "error") if record else "missing",
                "code_hash": record.get("code_hash"),
                "env_hash": record.get("env_hash"),
                "key": record.get("key"),
                "device": prov.get("device"),
                "finished_at": prov.get("finished_at"),
                "metrics": metrics,
                "claims": claims,
            }
        )
    dates = [str(r["finished_at"]) for r in runners if r["finished_at"]]
    return {"format": MANIFEST_FORMAT, "commit": commit, "date": max(dates, default=""), "runners": runners}


def manifest_text(manifest: dict[str, Any]) -> str:
    # the same serialisation as store.write_json_atomic, so the published and the kept copy match
    return json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1) + "\n"


def is_manifest(data: Any) -> bool:
    """Whether loaded JSON has the manifest's shape (a baseline is outside data)."""
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return False
    if not isinstance(data.get("runners"), list):
        return False
    return all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in data["runners"])
