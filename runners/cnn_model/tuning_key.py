"""Where the CNN's per-machine tuning record lives, and the identity hook that puts its choice in the key.

Standard library only: reportgen loads this file by path (RunnerSpec.identity) without torch, and
the runner (runners/cnn_model/tuning.py) uses the same functions, so the two always agree on the
file. A record is `$LIVING_TUNING_DIR` (else ~/.cache/living-article/tuning) /
`<machine digest>-threads-<label>.json`: the machine is the CPU model and flags, the torch version
(read from the installed package's metadata, never by importing it), the C compiler and the native
kernels' sources; the label is the intra-op thread count the runner gets (`OMP_NUM_THREADS`, which
reportgen's child sets when it is given `--threads N`, else "default").

reportgen computes the key in its own process, which does not know the thread count a child will be
given, so `chosen_path` reports the records of every thread label of this machine: the one choice
when they agree (the usual case), else each with its label. The thread count itself is in the key
already (RunnerSpec.environment).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

ENV = "LIVING_TUNING_DIR"
UNTUNED = "untuned"
KERNELS = Path(__file__).resolve().parents[1] / "kernels"  # runners/kernels: the C sources tuning measured


def tuning_dir() -> Path:
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "living-article" / "tuning"


def cpu_identity() -> str:
    """`model; flags <sha256 prefix>` from /proc/cpuinfo, else the platform's processor name."""
    model, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware", "cpu model") and not model:
                model = value.strip()
            elif key in ("flags", "features") and not flags:
                flags = " ".join(sorted(value.split()))
    except OSError:
        pass
    model = model or platform.processor() or platform.machine() or "unknown"
    return f"{model}; flags {hashlib.sha256(flags.encode()).hexdigest()[:16] if flags else 'unknown'}"


def compiler_identity() -> str:
    """The first line of `$CC --version` (else `cc`), as runners/kernels/build.py would compile with; "none" without one."""
    wanted = os.environ.get("CC") or "cc"
    compiler = shutil.which(wanted)
    if not compiler:
        return "none"
    try:
        done = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return f"{Path(wanted).name} (no version)"
    lines = (done.stdout or "").splitlines()
    return lines[0].strip() if lines else f"{Path(wanted).name} (no version)"


def torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "absent"


def kernels_digest() -> str:
    """The native kernels' C sources: an edited kernel is measured again."""
    digest = hashlib.sha256()
    for path in sorted([*KERNELS.glob("*.c"), *KERNELS.glob("*.h")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def machine() -> dict[str, str]:
    """What of this machine a tuning record holds for (the thread count apart: `threads_label`)."""
    return {"cpu": cpu_identity(), "torch": torch_version(), "compiler": compiler_identity(), "kernels": kernels_digest()}


def threads_label() -> str:
    """The intra-op thread count this process's runner gets: OMP_NUM_THREADS, else the libraries' default."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return value if value.isdigit() and int(value) > 0 else "default"


def machine_digest(ident: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def record_file(ident: dict[str, str], threads: str, directory: Path | None = None) -> Path:
    return (directory or tuning_dir()) / f"{machine_digest(ident)}-threads-{threads}.json"


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at `path`, or None when it is missing or unreadable (a torn or edited file is measured again)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("choice"), str) else None


def recorded(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """This machine's records by thread label."""
    prefix = f"{machine_digest(machine())}-threads-"
    found = {}
    for path in sorted((directory or tuning_dir()).glob(f"{prefix}*.json")):
        record = read_record(path)
        if record is not None:
            found[path.name[len(prefix):-len(".json")]] = record
    return found


def chosen_path(root: Path) -> dict[str, str]:
    """The identity hook (runners/registry.py): {"cnn_path": the tuned choice, or "untuned"}."""
    del root  # the record is per machine, not per checkout
    choices = {label: record["choice"] for label, record in recorded().items()}
    if not choices:
        return {"cnn_path": UNTUNED}
    if len(set(choices.values())) == 1:
        return {"cnn_path": next(iter(choices.values()))}
    return {"cnn_path": "; ".join(f"{choice} (threads {label})" for label, choice in sorted(choices.items()))}
