"""Run one runner in this process and write its result as JSON (the child side of `reportgen`).

    python -m runners NAME --out DIR [--config JSON] [--device auto|cpu|cuda|mps] [--threads N]

Writes DIR/result.json and the runner's files under DIR. A failure inside the runner is written
as data (status "error" with the traceback) and the exit status is 1; anything worse (a crash,
a kill, a timeout) leaves no result.json and the parent records that instead.
"""

from __future__ import annotations

import argparse
import contextlib
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


class ConfigError(ValueError):
    """An override that does not fit the runner's Config; the one-line message names the key,
    the value and what was expected (shown on the page instead of a traceback)."""


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _convert(name: str, raw: Any, default: Any) -> Any:
    """`raw` as the type of the field's default; ConfigError rather than a silent truncation or guess."""
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"config {name}={raw!r}: expected {expected}")

    if isinstance(default, bool):
        word = str(raw).strip().lower()  # JSON true arrives as True: "true"
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise bad(f"a bool (true or false; default {str(default).lower()})")
    if isinstance(default, int):
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str):
            with contextlib.suppress(ValueError):
                return int(raw.strip())
        raise bad(f"an int (a whole number; default {default!r})")
    if isinstance(default, float):
        if isinstance(raw, (int, float, str)) and not isinstance(raw, bool):
            with contextlib.suppress(ValueError):
                return float(raw)
        raise bad(f"a float (a number; default {default!r})")
    if isinstance(default, str):
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):  # `--set k=5` arrives as 5
            raise bad(f"a str (default {default!r})")
        return raw if isinstance(raw, str) else str(raw)
    if isinstance(default, tuple):
        if not isinstance(raw, (list, tuple)):
            raise bad(f"a list such as {list(default)!r}")
        if len({type(v) for v in default}) != 1:  # empty or mixed: nothing to check elements against
            return tuple(raw)
        return tuple(_convert(f"{name}[{i}]", v, default[0]) for i, v in enumerate(raw))
    return raw


def build_config(config_cls: type, overrides: dict[str, Any], runner: str = "") -> Any:
    """Defaults from the runner's Config dataclass, with overrides checked against its fields."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - set(fields))
    prefix = f"{runner}." if runner else ""
    if unknown:
        names = ", ".join(prefix + k for k in unknown)
        raise ConfigError(f"unknown config key(s) {names}; valid keys: {', '.join(sorted(fields)) or '(none)'}")
    config = config_cls()
    values = {key: _convert(prefix + key, raw, getattr(config, key)) for key, raw in overrides.items()}
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
        config = build_config(module.Config, json.loads(args.config), spec.name)
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
            # a bad setting is the user's input, not a bug: the message says it all
            "traceback": "" if isinstance(exc, ConfigError) else traceback.format_exc(),
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
