"""The machine line every benchmark prints beside its figures: CPU model, logical CPUs, AVX-512 and AVX2.

Standard library only, so a benchmark that never imports torch (serve_first.py) prints it as cheaply
as one that does (cnn_throughput.py). Scripts run as `python benchmarks/NAME.py` find it beside them.
"""

from __future__ import annotations

import os
from pathlib import Path


def cpu_summary() -> str:
    """The CPU model and its vector extensions, from /proc/cpuinfo (what every figure here depends on)."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        return f"{model}; AVX-512: unknown"
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    # what the libraries were told to use, where it is limited (e.g. ONEDNN_MAX_CPU_ISA=AVX2 to stand in for an AVX2-only CPU)
    limits = [f"{k}={os.environ[k]}" for k in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "CC")
              if os.environ.get(k)]
    return (f"{model}; {os.cpu_count()} logical CPUs; AVX-512: {'yes (' + ' '.join(avx512) + ')' if avx512 else 'no'}; "
            f"AVX2: {'yes' if 'avx2' in flags else 'no'}" + (f"; limited by {' '.join(limits)}" if limits else ""))
