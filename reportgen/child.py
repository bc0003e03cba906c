"""Run one runner in this process and write its result as JSON (the child side of `reportgen`).

    python -m reportgen.child NAME --registry MODULE --out DIR [--config JSON]
        [--device auto|cpu|cuda|mps] [--threads N] [--upstream NAME=DIR ...]

`reportgen` starts it in the project's root with the root on PYTHONPATH, so MODULE (the
article's registry, e.g. `runners.registry`) and the runner modules it names import from the
project being built. Each --upstream names a runner this one needs and its stored result.

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

from reportgen.context import RunContext, read_upstream, seed_everything, select_device, set_threads
from reportgen.streams import attach_progress


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


def registry_runners(module: str) -> dict[str, Any]:
    return dict(importlib.import_module(module).RUNNERS)


def _upstream_arg(text: str) -> tuple[str, Path]:
    name, sep, directory = text.partition("=")
    if not sep or not name or not directory:
        raise argparse.ArgumentTypeError(f"--upstream {text!r}: expected NAME=DIR")
    return name, Path(directory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reportgen.child")
    parser.add_argument("name")
    parser.add_argument("--registry", required=True, help="module that defines RUNNERS, e.g. PACKAGE.registry")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", default="{}", help="JSON object of config overrides")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--upstream", type=_upstream_arg, action="append", default=[], metavar="NAME=DIR")
    args = parser.parse_args(argv)
    attach_progress()  # the build's progress channel, if it passed one (RunContext.progress)

    runners = registry_runners(args.registry)
    if args.name not in runners:
        parser.error(f"unknown runner {args.name!r}; known: {', '.join(sorted(runners))}")
    spec = runners[args.name]
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
        upstreams = {name: read_upstream(name, directory) for name, directory in args.upstream}
        ctx = RunContext(out_dir=args.out, device=device, device_name=device_name, seed=seed, upstreams=upstreams)
        result = module.run(config, ctx)
        record["result"] = result.to_json()
        record["status"] = "ok"
        if ctx.provenance:
            record["provenance"]["notes"] = {str(k): str(v) for k, v in sorted(ctx.provenance.items())}
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
            "versions": {"python": platform.python_version()},
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
