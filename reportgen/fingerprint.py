"""What determines a runner's result, and its hash.

A result is determined by (a) code: the runner's source, every module of the article's package
it imports (found by reading `import` statements, never by importing) with their companion
files (same name, another suffix: `conv_pool.c` beside `conv_pool.py`), the data files it
declares, reportgen's own runner-side modules, its config overrides, and the keys of the
results it reads (`needs`); and (b) environment: package versions, Python, the device kind for
runners whose result depends on the hardware, the data set's identity and the probes the
runner names (reportgen.probes). Two hashes keep them apart: a frozen result (committed by a
user, possibly computed on a GPU) is reused when only (a) matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import runpy
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from reportgen.i18n import ABSENT, Message, term
from reportgen.probes import environment
from reportgen.sources import closure_digests
from reportgen.spec import RunnerSpec, module_file

# Bump when the child protocol or the result layout changes: every cached result goes stale.
PROTOCOL = "2"
# reportgen's modules that run inside the runner's process: they shape every record
RUNNER_SIDE = ("api.py", "context.py", "child.py")
_TOOL_DIR = Path(__file__).resolve().parent


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


module_path = module_file  # the file of a project module (`pkg.x` → pkg/x.py or pkg/x/__init__.py)


_VERSIONS: dict[str, str] = {}
_VERSIONS_SEEN_WITH: list[tuple[int, ...]] = [()]


def _search_path_state() -> tuple[int, ...]:
    """The modification times of the import path's directories: installing or removing a package
    changes its directory's, so remembered versions stay right in a long `mkdocs serve`."""
    state = []
    for entry in sys.path:
        try:
            state.append(os.stat(entry or ".").st_mtime_ns)
        except OSError:
            state.append(-1)
    return tuple(state)


def package_version(name: str) -> str:
    state = _search_path_state()
    if state != _VERSIONS_SEEN_WITH[0]:
        _VERSIONS.clear()
        _VERSIONS_SEEN_WITH[0] = state
    if name not in _VERSIONS:
        try:
            _VERSIONS[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            _VERSIONS[name] = "absent"
    return _VERSIONS[name]


def dataset_identity(root: Path, hook: str) -> dict[str, str]:
    """What an article's hook says (which data files a runner would read, which tuned path it
    would take): `module:function` of the article (loaded by path, so it must import only the
    standard library) called with the project root."""
    module, sep, function = hook.partition(":")
    path = module_file(root, module) if sep and function else None
    if path is None:
        return {"error": f"data set hook {hook!r} not found (expected module:function under the project)"}
    found = runpy.run_path(str(path)).get(function)
    if not callable(found):
        return {"error": f"{module} has no function {function}"}
    return {str(k): str(v) for k, v in dict(found(root)).items()}


def tool_digests() -> dict[str, str]:
    """reportgen's runner-side modules, by name (never by where reportgen is installed)."""
    return {f"reportgen/{name}": _sha256((_TOOL_DIR / name).read_bytes()) for name in RUNNER_SIDE}


def probe_device_kind() -> str:
    """Which accelerator a run would get, guessed without importing torch (kept cheap on purpose).

    The runner records the device it really used; this only decides the cache key.
    """
    if Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists():
        return "cuda"
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return "mps"
    return "cpu"


@dataclass(frozen=True)
class Fingerprint:
    code_hash: str
    env_hash: str
    inputs: dict[str, Any]  # what went into the hashes, stored with the result to explain staleness

    @property
    def key(self) -> str:
        return f"{self.code_hash[:20]}-{self.env_hash[:12]}"


def fingerprint(
    root: Path,
    spec: RunnerSpec,
    overrides: dict[str, Any],
    device: str,
    *,
    package: str,
    threads: int = 0,
    upstream_keys: dict[str, str] | None = None,
) -> Fingerprint:
    """Hash exactly what determines the runner's result (`upstream_keys`: the key of each result it reads)."""
    digests = closure_digests(root, spec.module, (package,))
    for path in {root / rel for rel in spec.data_files} - set(digests):
        digests[path] = _sha256(path.read_bytes()) if path.is_file() else "missing"
    files = {path.relative_to(root).as_posix(): digests[path] for path in sorted(digests)}
    files.update(tool_digests())
    device_kind = (probe_device_kind() if device == "auto" else device) if spec.uses_device else "cpu"
    code: dict[str, Any] = {"protocol": PROTOCOL, "runner": spec.name, "files": files, "config": overrides}
    if spec.needs:
        code["upstream"] = {name: (upstream_keys or {}).get(name, "unknown") for name in spec.needs}
    env: dict[str, Any] = {
        "python": ".".join(platform.python_version_tuple()[:2]),
        "packages": {name: package_version(name) for name in sorted(spec.packages)},
        "device": device_kind,
    }
    if spec.dataset:
        env["data"] = dataset_identity(root, spec.dataset)
    if spec.environment:
        env["machine"] = environment(spec.environment, threads)
    if spec.identity:
        env["identity"] = {hook: dataset_identity(root, hook) for hook in spec.identity}
    return Fingerprint(
        code_hash=_sha256(canonical_json(code).encode()),
        env_hash=_sha256(canonical_json(env).encode()),
        inputs={"code": code, "env": env},
    )


def explain_change(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Human-readable reasons why a stored result no longer matches (for `reportgen status`): English
    strings that are Messages (reportgen.i18n), so a page shows them in its own language."""
    if not old:
        return [Message("reason.none")]
    reasons: list[str] = []
    old_files, new_files = old["code"]["files"], new["code"]["files"]
    for rel in sorted(set(old_files) | set(new_files)):
        if rel not in old_files:
            reasons.append(Message("reason.new_file", path=rel))
        elif rel not in new_files:
            reasons.append(Message("reason.unused_file", path=rel))
        elif old_files[rel] != new_files[rel]:
            reasons.append(Message("reason.changed_file", path=rel))
    if old["code"]["config"] != new["code"]["config"]:
        configs = canonical_json(old["code"]["config"]), canonical_json(new["code"]["config"])
        reasons.append(Message("reason.config", before=configs[0], after=configs[1]))
    if old["code"].get("protocol") != new["code"].get("protocol"):
        reasons.append(Message("reason.protocol"))
    old_up, new_up = old["code"].get("upstream") or {}, new["code"].get("upstream") or {}
    reasons += [Message("reason.upstream", name=name) for name in sorted(set(old_up) | set(new_up)) if old_up.get(name) != new_up.get(name)]
    old_machine, new_machine = old["env"].get("machine") or {}, new["env"].get("machine") or {}
    for key in sorted(set(old_machine) | set(new_machine)):
        if old_machine.get(key) != new_machine.get(key):
            before, after = old_machine.get(key, ABSENT), new_machine.get(key, ABSENT)
            reasons.append(Message("reason.value", what=term(key), before=before, after=after))
    for key in ("python", "device"):
        if old["env"][key] != new["env"][key]:
            reasons.append(Message("reason.value", what=term(key), before=old["env"][key], after=new["env"][key]))
    old_ids, new_ids = old["env"].get("identity") or {}, new["env"].get("identity") or {}
    for hook in sorted(set(old_ids) | set(new_ids)):
        before, after = old_ids.get(hook) or {}, new_ids.get(hook) or {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                reasons.append(Message("reason.value", what=key, before=before.get(key, ABSENT), after=after.get(key, ABSENT)))
    old_data, new_data = old["env"].get("data", {}), new["env"].get("data", {})
    for key in sorted(set(old_data) | set(new_data)):
        if old_data.get(key) != new_data.get(key):
            reasons.append(Message("reason.data", name=key, before=old_data.get(key, ABSENT), after=new_data.get(key, ABSENT)))
    for name, version in new["env"]["packages"].items():
        before = old["env"]["packages"].get(name)
        if before != version:
            reasons.append(Message("reason.value", what=name, before=before, after=version))
    return reasons or [Message("reason.unknown")]


def git_commit(root: Path) -> str:
    """The commit the working tree is at, read from .git without running git (cheap, no subprocess).
    As git does, the repository is the nearest `.git` at or above `root` (an article may live in a
    subfolder of one, as examples/ here)."""
    top = next((d for d in [root, *root.resolve().parents] if (d / ".git").exists()), root)
    git = top / ".git"
    try:
        if git.is_file():  # worktree: "gitdir: …"
            git = (top / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(" ", 1)[1]
        common = git
        if (git / "commondir").is_file():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return line.split(" ", 1)[0]
    except (OSError, IndexError):
        pass
    return os.environ.get("GITHUB_SHA", "unknown")
