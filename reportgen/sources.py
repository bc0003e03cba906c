"""Which source files a runner's result depends on: its module, the modules of the article's
package it imports (read from `import` statements, never by importing) and their companion
files. Each file is parsed once per content; the scans are kept between builds (imports.json).
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any

from reportgen.spec import module_file


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _imported_modules(source: str, package: str) -> set[str]:
    """Absolute names of the modules a source file imports (relative imports resolved)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(parts)
                base = f"{prefix}.{node.module}" if node.module else prefix
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


SCANS_FORMAT = 1  # bump when `_imported_modules` changes: the scans kept by earlier builds are dropped
_SCANNED: dict[str, list[str]] = {}  # "<sha256 of a source> <its package>" → the modules it imports
_USED: set[str] = set()  # the scans looked up since `remember_scans`


def _imports_of(data: bytes, digest: str, package: str) -> list[str]:
    """`_imported_modules` of a source, parsed once per content (a rebuild re-parses only what changed)."""
    key = f"{digest} {package}"
    names = _SCANNED.get(key)
    if names is None:
        names = _SCANNED[key] = sorted(_imported_modules(data.decode("utf-8"), package))
    _USED.add(key)
    return names


def remember_scans(kept: Any) -> dict[str, list[str]]:
    """Start counting the scans used, taking those an earlier build kept (see `scans_to_keep`);
    returns the valid ones (a malformed value is ignored: its sources are parsed again)."""
    _USED.clear()
    valid: dict[str, list[str]] = {}
    if isinstance(kept, dict) and kept.get("format") == SCANS_FORMAT and isinstance(kept.get("scans"), dict):
        for key, names in kept["scans"].items():
            if isinstance(key, str) and isinstance(names, list) and all(isinstance(n, str) for n in names):
                valid[key] = _SCANNED.setdefault(key, names)
    return valid


def scans_to_keep(kept: dict[str, list[str]], limit: int = 1000) -> dict[str, Any] | None:
    """What to keep for the next build: `kept` plus the scans used since `remember_scans` (only
    those, past `limit`); None when every scan used was already kept (nothing to write)."""
    used = {key: _SCANNED[key] for key in sorted(_USED)}
    if used.keys() <= kept.keys():
        return None
    merged = {**kept, **used}
    return {"format": SCANS_FORMAT, "scans": merged if len(merged) <= limit else used}


def companions(path: Path) -> list[Path]:
    """Files that belong to a module's source: same folder, same name, another suffix (`x.c` of `x.py`)."""
    if path.name == "__init__.py":
        return []
    return sorted(p for p in path.parent.glob(f"{path.stem}.*") if p.suffix not in (".py", ".pyc") and p.is_file())


def closure_digests(root: Path, module: str, project_packages: tuple[str, ...]) -> dict[Path, str]:
    """The sha256 of the module's file and of every project module it imports, transitively,
    with their companion files."""
    seen: dict[str, Path] = {}
    digests: dict[Path, str] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen or name.split(".")[0] not in project_packages:
            continue
        path = module_file(root, name)
        if path is None:
            continue  # `from pkg.api import Result` also yields "reportgen.api.Result"
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        data = path.read_bytes()
        digests[path] = digest = _sha256(data)
        for companion in companions(path):
            digests[companion] = _sha256(companion.read_bytes())
        pending.extend(_imports_of(data, digest, package))
    return digests


def source_closure(root: Path, module: str, project_packages: tuple[str, ...]) -> list[Path]:
    """The module's file and every project module it imports, transitively, sorted."""
    return sorted(closure_digests(root, module, project_packages))
