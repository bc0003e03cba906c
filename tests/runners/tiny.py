"""Running a training runner in-process on a tiny budget of real MNIST images (shared by its tests)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from reportgen.child import build_config
from reportgen.context import RunContext, Upstream

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def run_tiny(runner: ModuleType, out: Path, overrides: dict[str, Any], upstreams: dict[str, Upstream] | None = None) -> Any:
    """`runner.run` on the CPU with `overrides` applied to its Config, reading MNIST from MNIST_DIR and
    the results it needs from `upstreams`."""
    config = build_config(runner.Config, overrides)
    seed = int(getattr(config, "seed", 0))  # as reportgen.child seeds the run
    ctx = RunContext(out_dir=out, device="cpu", device_name="cpu", seed=seed, upstreams=dict(upstreams or {}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIVING_MNIST_DIR", str(MNIST_DIR))
        return runner.run(config, ctx)


def tiny_result(runner: ModuleType, factory: pytest.TempPathFactory, overrides: dict[str, Any]) -> tuple[Path, Any]:
    """(output directory, result) of one tiny run; skips the test when MNIST is not there."""
    if not MNIST_DIR.is_dir():
        pytest.skip(f"MNIST not available at {MNIST_DIR}")
    out = factory.mktemp(runner.__name__.rpartition(".")[2])
    return out, run_tiny(runner, out, overrides)


def loaded_kernel(module: ModuleType) -> Any:
    """The C kernel library of `module` (runners.kernels.conv_pool, runners.kernels.winograd_pool): the test
    fails where it must build (CI sets LIVING_REQUIRE_KERNEL: it has a C compiler) and is skipped elsewhere."""
    import os

    built = module.load()
    if built.lib is None:
        if os.environ.get("LIVING_REQUIRE_KERNEL"):
            pytest.fail(built.how)
        pytest.skip(built.how)
    return built.lib
