"""What of the machine changes a runner's numbers, read cheaply: no process started, no torch.

A runner names the probes that matter to it in `RunnerSpec.environment`; their values go into
its cache key (env hash) and its provenance:

- `cpu`: the CPU model and a hash of its feature flags (a kernel compiled with -march=native, or
  a library that picks its code path by CPU, computes differently on another CPU);
- `threads`: the intra-op thread count the runner is given, or the libraries' default for the
  machine's CPU count (reductions split by thread sum in another order);
- `compiler`: the C compiler a runner would build native code with (`$CC`, else `cc` on PATH),
  by name and the sha256 of its binary, or "none": with no compiler the native kernels do not run;
- `cjk_font`: the font a runner's figures draw Chinese, Japanese or Korean text with
  (`reportgen.fonts`), or "none": another font draws other pixels, and with none the text is boxes.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
from pathlib import Path

from reportgen.fonts import cjk_font_identity

_BINARY_DIGESTS: dict[tuple[str, int, int], str] = {}


def cpu_identity() -> str:
    """`model; flags <sha256 prefix>` from /proc/cpuinfo (Linux), else the platform's processor name."""
    model, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key == "model name" and not model:
                model = value.strip()
            elif key in ("flags", "features") and not flags:
                flags = " ".join(sorted(value.split()))
            if model and flags:
                break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    digest = hashlib.sha256(flags.encode()).hexdigest()[:16] if flags else "unknown"
    return f"{model}; flags {digest}"


def _binary_digest(path: Path) -> str:
    stat = path.stat()
    memo = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo not in _BINARY_DIGESTS:
        _BINARY_DIGESTS[memo] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return _BINARY_DIGESTS[memo]


def compiler_identity(environ: dict[str, str] | None = None) -> str:
    """`name sha256:<prefix>` of the C compiler's binary, or "none" (the kernels then do not build)."""
    env = os.environ if environ is None else environ
    wanted = (env.get("CC") or "cc").split()[0]
    found = shutil.which(wanted, path=env.get("PATH"))
    if found is None:
        return "none"
    real = Path(found).resolve()
    try:
        return f"{real.name} sha256:{_binary_digest(real)}"
    except OSError:
        return f"{real.name} (unreadable)"


def environment(probes: tuple[str, ...], threads: int) -> dict[str, str]:
    """The values of the named probes, for the key and the provenance."""
    values: dict[str, str] = {}
    for probe in probes:
        if probe == "cpu":
            values["cpu"] = cpu_identity()
        elif probe == "threads":
            # 0: the libraries' defaults, which follow the number of CPUs
            values["threads"] = str(threads) if threads else f"default ({os.cpu_count() or 1} CPUs)"
        elif probe == "compiler":
            values["compiler"] = compiler_identity()
        elif probe == "cjk_font":
            values["cjk_font"] = cjk_font_identity()
    return values
