"""Run one runner in this process and write its result as JSON (the child side of `reportgen`).

    python -m runners NAME --out DIR [--config JSON] [--device auto|cpu|cuda|mps] [--threads N]

Writes DIR/result.json and the runner's files under DIR. A failure inside the runner is written
as data (status "error" with the traceback) and the exit status is 1; anything worse (a crash,
a kill, a timeout) leaves no result.json and the parent records that instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runners.context import RunContext, seed_everything, select_device, set_threads
from runners.registry import RUNNERS


def build_config(config_cls: type, overrides: dict[str, Any]) -> Any:
    """Defaults from the runner's Config dataclass, with overrides checked against its fields."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown}; valid keys: {sorted(fields)}")
    config = config_cls()
    values = {}
    for key, raw in overrides.items():
        default = getattr(config, key)
        try:
            if isinstance(default, bool):
                value = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
            elif isinstance(default, (int, float, str)) and not isinstance(raw, type(default)):
                value = type(default)(raw)
            elif isinstance(default, tuple):
                value = tuple(raw)
            else:
                value = raw
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config {key}={raw!r}: expected {type(default).__name__}") from exc
        values[key] = value
    return dataclasses.replace(config, **values)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("numpy", "torch", "matplotlib"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = str(getattr(module, "__version__", "?"))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runners")
    parser.add_argument("name", choices=sorted(RUNNERS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", default="{}", help="JSON object of config overrides")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)

    spec = RUNNERS[args.name]
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "Agg")
    record: dict[str, Any] = {"runner": spec.name}
    started = time.perf_counter()
    try:
        set_threads(args.threads)
        module = importlib.import_module(spec.module)
        config = build_config(module.Config, json.loads(args.config))
        record["config"] = dataclasses.asdict(config)
        seed = int(getattr(config, "seed", 0))
        device, device_name = select_device(args.device if spec.uses_device else "cpu")
        seed_everything(seed)
        record["provenance"] = {"device": device, "device_name": device_name, "seed": seed}
        ctx = RunContext(out_dir=args.out, device=device, device_name=device_name, seed=seed)
        result = module.run(config, ctx)
        record["result"] = result.to_json()
        record["status"] = "ok"
    except Exception as exc:  # recorded as data: the page shows it
        record["status"] = "error"
        record["error"] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        }
    provenance = record.setdefault("provenance", {})
    provenance.update(
        {
            "wall_time_s": round(time.perf_counter() - started, 3),
            "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "platform": platform.platform(),
            "versions": versions(),
        }
    )
    sys.stdout.flush()
    sys.stderr.flush()
    tmp = args.out / "result.json.tmp"
    tmp.write_text(json.dumps(record, ensure_ascii=False, sort_keys=True, indent=1), encoding="utf-8")
    os.replace(tmp, args.out / "result.json")
    return 0 if record["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
