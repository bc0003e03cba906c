"""The one place where a runner's side effects are set: device, seeds, threads, output files,
and what it reads from the runners it builds on (`RunContext.upstream`).

Runs in the runner's process. torch is imported only when a runner asks for a device other than
the CPU (and only if the runner's process has it): reportgen's own process never imports it.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportgen.streams import report_progress

ARTIFACTS_DIR = "artifacts"  # under a runner's output directory: stored and sealed, never published


class UpstreamError(LookupError):
    """A runner asked for an upstream it does not declare in `needs`, or for a file it did not write."""


@dataclass(frozen=True)
class Upstream:
    """The stored result of a runner this one builds on: its record and the files it wrote."""

    name: str
    directory: Path
    record: dict[str, Any]

    @property
    def result(self) -> dict[str, Any]:
        return dict(self.record.get("result") or {})

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.result.get("metrics") or {})

    @property
    def key(self) -> str:
        return str(self.record.get("key", ""))

    def path(self, rel: str) -> Path:
        """A file the upstream runner wrote (e.g. trained weights); UpstreamError if it wrote none such."""
        files = self.record.get("files")
        artifact = f"{ARTIFACTS_DIR}/{rel}"  # written with ctx.artifact(rel)
        if isinstance(files, dict) and rel not in files and artifact in files:
            rel = artifact
        elif not isinstance(files, dict) and not (self.directory / rel).is_file():
            rel = artifact  # a record without its file list (a child run by hand): look on disk
        if isinstance(files, dict) and rel not in files:
            raise UpstreamError(f"runner {self.name} wrote no file {rel!r}; it wrote: {', '.join(sorted(files)) or 'none'}")
        target = self.directory / rel
        if not target.is_file():
            raise UpstreamError(f"runner {self.name}: {rel} is missing from its stored result")
        return target


def read_upstream(name: str, directory: Path) -> Upstream:
    record = json.loads((directory / "result.json").read_text(encoding="utf-8"))
    return Upstream(name, directory, record)


@dataclass
class RunContext:
    """What a runner may use besides its config: where to write files, which device, which seed,
    and the results of the runners it needs."""

    out_dir: Path
    device: str  # torch device string actually used: "cpu", "cuda", "mps"
    device_name: str
    seed: int
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    # what the run found out about how it computed (e.g. which native kernels ran): shown with
    # the provenance; anything that changes the numbers must also be in the key (RunnerSpec.environment)
    provenance: dict[str, Any] = field(default_factory=dict)

    def upstream(self, name: str) -> Upstream:
        """The result of runner `name`, which must be in this runner's `needs`."""
        if name not in self.upstreams:
            known = ", ".join(sorted(self.upstreams)) or "none"
            raise UpstreamError(f"no upstream {name!r}: add it to the runner's `needs` (it has: {known})")
        return self.upstreams[name]

    def path(self, name: str) -> Path:
        """A file in the runner's output directory (figures, checkpoints, exported models)."""
        target = self.out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def artifact(self, name: str) -> Path:
        """A file kept with the result for the runners that build on this one (`Upstream.path`),
        but not published on the site (large intermediate data, say)."""
        return self.path(f"{ARTIFACTS_DIR}/{name}")

    def progress(self, message: str) -> bool:
        """Say what the run is doing, e.g. "epoch 1/2, step 60/125 (812 images/s)": the build's log
        shows it (at most one line every few seconds) while the runner works. Not part of the
        result: report as often as is useful, it never blocks and never fails the run (False: not
        sent, when run outside a build or when the build reads slowly)."""
        return report_progress(message)

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
    try:
        import torch
    except ImportError:  # a runner without torch computes on the CPU
        return "cpu", cpu_name()

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
