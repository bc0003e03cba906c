"""The one place where a runner's side effects are set: device, seeds, threads, output files."""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class RunContext:
    """What a runner may use besides its config: where to write files, which device, which seed."""

    out_dir: Path
    device: str  # torch device string actually used: "cpu", "cuda", "mps"
    device_name: str
    seed: int

    def path(self, name: str) -> Path:
        """A file in the runner's output directory (figures, checkpoints, exported models)."""
        target = self.out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def save_figure(self, fig: Any, name: str) -> str:
        """Save a matplotlib figure as PNG without run-dependent metadata; return its relative path."""
        rel = f"{name}.png"
        fig.savefig(self.path(rel), dpi=110, bbox_inches="tight", metadata={"Software": None})
        import matplotlib.pyplot as plt

        plt.close(fig)
        return rel


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) so a run is repeatable on CPU.

    Called after the runner module is imported: a library the runner does not use is not
    imported just to seed it (keeps plain-Python runners fast to start).
    """
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)  # also seeds every CUDA device


def cpu_name() -> str:
    """The CPU model as the OS reports it (Linux /proc/cpuinfo, else platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def select_device(requested: str) -> tuple[str, str]:
    """Pick the torch device once per run: "auto" means CUDA, then Apple MPS, then CPU.

    A request for a device that is not available falls back to CPU (the provenance says so)
    rather than failing, so a frozen GPU config still builds on a CPU-only machine.
    """
    want = requested.lower()
    if want == "cpu":
        return "cpu", cpu_name()
    import torch

    if want in ("auto", "cuda") and torch.cuda.is_available():
        return "cuda", torch.cuda.get_device_name(0)
    mps = getattr(torch.backends, "mps", None)
    if want in ("auto", "mps") and mps is not None and mps.is_available():
        return "mps", "Apple MPS"
    return "cpu", cpu_name()


def set_threads(threads: int | None) -> None:
    """Limit intra-op threads when several runners share the machine."""
    if not threads:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:  # otherwise OMP_NUM_THREADS applies when torch is imported
        sys.modules["torch"].set_num_threads(threads)
