"""Keep the build machine's paths out of what a build publishes.

A record carries tracebacks, captured output and texts a runner wrote, and a runner writes files
(an exported model, a log). Any of them may hold where the project lies (`/home/alice/work/…`),
the cache's temporary work directory, or the home directory. Those would leak who built the
site, and they would make two builds of one commit from two checkouts differ. So texts have
them replaced (`<out>`, the project-relative path, `~`), and files that contain one are refused:
a file's bytes cannot be rewritten safely, and the runner that wrote it is the place to fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_SCANNED_BYTES = 256 << 20  # files larger than this are not read back (none are published here)


@dataclass(frozen=True)
class MachinePaths:
    """The paths to take out, longest first, each with what stands in its place."""

    replacements: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, root: Path, workdir: Path | None = None, cache_dir: Path | None = None) -> MachinePaths:
        pairs: list[tuple[str, str]] = []
        if workdir is not None:
            pairs.append((str(workdir.resolve()), "<out>"))
            pairs.append((str(workdir), "<out>"))
        if cache_dir is not None:
            pairs.append((str(cache_dir.resolve()), "<cache>"))
        pairs.append((str(root.resolve()) + os.sep, ""))  # a path inside the project: project-relative
        pairs.append((str(root.resolve()), "."))
        home = os.path.expanduser("~")
        pairs.append((home + os.sep, "~" + os.sep))
        # too short to be a real path of this machine ("/" as home), or seen twice: skip
        seen: set[str] = set()
        kept = []
        for path, stand_in in sorted(pairs, key=lambda p: -len(p[0])):
            if len(path.strip(os.sep)) >= 3 and path not in seen:
                seen.add(path)
                kept.append((path, stand_in))
        return cls(tuple(kept))

    def text(self, value: str) -> str:
        for path, stand_in in self.replacements:
            if path in value:
                value = value.replace(path, stand_in)
        return value

    def redact(self, value: Any) -> Any:
        """`value` (a record: dicts, lists, strings) with every path replaced in its strings and keys."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.redact(k): self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value

    def files_with_paths(self, directory: Path) -> list[str]:
        """One problem line per file under `directory` that contains one of the paths (as UTF-8)."""
        needles = [(p.encode(), p) for p, _ in self.replacements]
        problems = []
        for path in sorted(directory.rglob("*")):
            if path.is_symlink() or not path.is_file() or path.name == "result.json":
                continue
            if path.stat().st_size > MAX_SCANNED_BYTES:
                continue
            data = path.read_bytes()
            hits = sorted({shown for needle, shown in needles if needle in data})
            if hits:
                rel = path.relative_to(directory).as_posix()
                problems.append(f"{rel} contains a path of the build machine ({hits[0]}); write the file without it")
        return problems
