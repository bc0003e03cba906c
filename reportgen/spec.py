"""What an article declares about each runner (`RunnerSpec`), and how its registry is found.

An article's registry is a module (by default `<runners package>.registry`) that defines
`RUNNERS: dict[str, RunnerSpec]`. It is read by path, never imported: the project being built
decides what runs, not whatever package of that name is installed, and an edit to it is seen by
the next rebuild of a long `mkdocs serve`. So the registry imports nothing but the standard
library and `reportgen.spec`.
"""

from __future__ import annotations

import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Environment probes a runner can ask to have in its cache key and provenance (reportgen.probes).
ENVIRONMENT_PROBES = ("cpu", "threads", "compiler", "cjk_font")


@dataclass(frozen=True)
class RunnerSpec:
    name: str  # also the page name: results/<name>.md
    module: str  # importable module that defines Config and run()
    title: str  # page title (shown in the navigation)
    source: str  # where the article gives this example, e.g. "000 §2.4.1"
    timeout_s: float = 300.0
    # True when the result depends on the hardware (training); walk-throughs run on CPU in float64.
    uses_device: bool = False
    # Packages whose version is part of the cache key and listed in the provenance.
    packages: tuple[str, ...] = ("numpy", "torch", "matplotlib")
    # Files the runner reads besides its imports (paths relative to the project root).
    data_files: tuple[str, ...] = field(default_factory=tuple)
    # A data set whose identity (which files are on disk) is part of the cache key, as
    # "module:function": the function takes the project root and returns {part: identity}.
    # The module is loaded by path and imports only the standard library.
    dataset: str = ""
    # True when Config has a `profile` field ("auto" | "full" | "quick"): the global profile setting applies.
    profiles: bool = False
    memory_mb: int = 0  # address-space limit of the runner's process in MB (0: none)
    # Runners whose results this one reads (ctx.upstream(name)): it runs after them, and their
    # keys are part of its own, so a change upstream re-runs it.
    needs: tuple[str, ...] = field(default_factory=tuple)
    # What of the machine changes the numbers (see ENVIRONMENT_PROBES): part of the key and provenance.
    environment: tuple[str, ...] = field(default_factory=tuple)
    # More of what changes the numbers, read by the article's own code: "module:function" hooks
    # (loaded by path, standard library only) that take the project root and return {name: value},
    # e.g. which code path a per-machine tuning cache chose. The key is taken again after a run,
    # so a run that fills such a cache is stored under the key the next build computes.
    identity: tuple[str, ...] = field(default_factory=tuple)


class RegistryError(ValueError):
    """The registry cannot be found or declares something impossible; the message says what."""


def module_file(root: Path, module: str) -> Path | None:
    """The source file of a project module (`pkg.x` → pkg/x.py or pkg/x/__init__.py)."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def load_registry(root: Path, module: str) -> dict[str, RunnerSpec]:
    """The runners the registry module declares, checked: known needs, no cycle, known probes."""
    path = module_file(root, module)
    if path is None:
        raise RegistryError(f"registry {module} not found under {root} (set `registry:` of the living-article plugin)")
    namespace: dict[str, Any] = runpy.run_path(str(path))
    runners = namespace.get("RUNNERS")
    if not isinstance(runners, dict):
        raise RegistryError(f"{module} defines no RUNNERS dict")
    registry = dict(runners)
    check_registry(registry)
    return registry


def check_registry(registry: dict[str, RunnerSpec]) -> None:
    for spec in registry.values():
        unknown = [n for n in spec.needs if n not in registry]
        if unknown:
            raise RegistryError(f"runner {spec.name} needs unknown runner(s) {', '.join(unknown)}")
        probes = [p for p in spec.environment if p not in ENVIRONMENT_PROBES]
        if probes:
            raise RegistryError(f"runner {spec.name}: unknown environment probe(s) {', '.join(probes)}; "
                                f"known: {', '.join(ENVIRONMENT_PROBES)}")
    topological(registry)


def topological(registry: dict[str, RunnerSpec], names: list[str] | None = None) -> list[str]:
    """`names` (default: all) with their upstreams, each after what it needs, otherwise in registry order."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " → ".join([*visiting[visiting.index(name):], name])
            raise RegistryError(f"runners need each other in a cycle: {cycle}")
        visiting.append(name)
        for need in registry[name].needs:
            visit(need)
        visiting.pop()
        order.append(name)

    for name in names if names is not None else list(registry):
        visit(name)
    return order


def downstream(registry: dict[str, RunnerSpec], name: str) -> list[str]:
    """The runners that read `name`'s results, directly or through others, in registry order."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for spec in registry.values():
            if spec.name not in found and any(n == name or n in found for n in spec.needs):
                found.add(spec.name)
                changed = True
    return [n for n in registry if n in found]
