"""The bad-input half of benchmarks/fault_injection.py: corrupted cache entries and malformed
config values. Each function returns (inputs tried, inputs mishandled); mishandled must be 0.

- A corrupted entry (a flipped byte, a truncated or deleted file, an appended byte, a record
  rewritten with another number) must be rejected by `read_entry`, or be a change that leaves
  its content as it was, and the next build must recompute it.
- A config value must be converted to the field's type or give a one-line ConfigError that
  names the key and the value, never another exception.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reportgen.child import ConfigError, build_config  # noqa: E402
from reportgen.pipeline import bring_up_to_date  # noqa: E402
from reportgen.settings import load_settings  # noqa: E402
from reportgen.store import CorruptEntry, Store, read_entry  # noqa: E402


def corrupt(directory: Path, rng: random.Random) -> str:
    """Damage one file of an entry in one of several ways; return what was done."""
    target = rng.choice(sorted(p for p in directory.rglob("*") if p.is_file()))
    data = bytearray(target.read_bytes())
    how = rng.choice(["flip", "truncate", "delete", "append", "tamper"])
    if how == "flip" and data:
        data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
    elif how == "truncate":
        data = data[: rng.randrange(len(data) + 1)]
    elif how == "tamper" and target.name == "result.json":  # valid JSON, a different number
        record = json.loads(data)
        record["result"]["metrics"]["v"] += 1
        data = bytearray(json.dumps(record).encode())
    else:
        data += b"\0"
    if how == "delete":
        target.unlink()
    else:
        target.write_bytes(bytes(data))
    return f"{how} {target.name}"


def build_here(root: Path, config: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """A normal build in this process; returns each runner's stored metric `v` (None if it failed)."""
    settings = load_settings(root, environ={})
    settings.config = config
    outcomes = bring_up_to_date(settings, names)
    return {n: o.entry.record["result"]["metrics"]["v"] if o.entry and o.entry.ok else None for n, o in outcomes.items()}


def try_corruptions(root: Path, runners: list[str], count: int, rng: random.Random) -> tuple[int, int]:
    """Corrupt a stored entry `count` times: rejected (or unchanged in content), then recomputed."""
    config = {name: {"v": 7} for name in runners}
    build_here(root, config, runners)
    store, mishandled = Store(root / ".living" / "cache"), 0
    for _ in range(count):
        name = rng.choice(runners)
        directory = store.entry_dir(name, (store.cache_dir / name / "LATEST").read_text(encoding="utf-8"))
        original = read_entry(directory).record
        what = corrupt(directory, rng)
        try:
            if read_entry(directory).record != original:
                mishandled += 1
                print(f"accepted a changed entry after: {what}", file=sys.stderr)
        except CorruptEntry:
            pass
        if build_here(root, config, [name]) != {name: 7}:  # recomputed, or reused if it meant the same
            mishandled += 1
            print(f"not recovered after: {what}", file=sys.stderr)
    return count, mishandled


@dataclass(frozen=True)
class Fields:
    x: float = 2.0
    n: int = 3
    flag: bool = False
    name: str = "a"
    pair: tuple[float, ...] = (0.1, 0.9)


VALUES = ["abc", "", " ", "1,5", "0x", "[1", "{}", "nan?", "1e", "真", "<script>", "2.5.1", None, [], {}, [1, 2, 3],
          1, 0, -4, 2.5, 1e300, True, False, "7", "1e-3", "true", "off", [0.2, 0.8]]


def try_config_values(count: int, rng: random.Random) -> tuple[int, int]:
    """Random values for each field: a correct conversion or a one-line ConfigError naming key and value."""
    mishandled = 0
    for _ in range(count):
        key, value = rng.choice(["x", "n", "flag", "name", "pair", "nosuch"]), rng.choice(VALUES)
        try:
            got = getattr(build_config(Fields, {key: value}, "toy"), key)
            ok, message = isinstance(got, type(getattr(Fields(), key))), repr(got)
        except ConfigError as exc:
            message = str(exc)
            ok = "\n" not in message and f"toy.{key}" in message and (key == "nosuch" or repr(value) in message)
        except Exception as exc:  # anything else is a traceback for the user
            ok, message = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            mishandled += 1
            print(f"config {key}={value!r}: {message}", file=sys.stderr)
    return count, mishandled
