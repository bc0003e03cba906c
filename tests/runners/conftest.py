"""Fixtures of the runner tests: one tiny cnn run whose trained model the deployment runners take
(cnn_onnx and cnn_compress need it, as in the build: RunnerSpec.needs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny import MNIST_DIR, run_tiny

from reportgen.context import Upstream

# a few seconds of training on the real (offline) test split: enough for a model worth deploying
TINY_CNN = {"profile": "quick", "quick_train": 256, "test_limit": 256, "quick_epochs": 1, "download": False}


@pytest.fixture(scope="session", autouse=True)
def tuning_record_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The CNN's per-machine tuning record (runners/cnn_model/tuning_key.py) of this session: never the user's."""
    directory = tmp_path_factory.mktemp("tuning")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIVING_TUNING_DIR", str(directory))
        yield directory


@pytest.fixture(scope="session")
def cnn_upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    """The tiny cnn run as the stored result a downstream runner reads through ctx.upstream("cnn")."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST test files not available at {MNIST_DIR}")
    from runners import cnn

    out = tmp_path_factory.mktemp("cnn_upstream")
    result = run_tiny(cnn, out, TINY_CNN)
    files = {p.relative_to(out).as_posix(): "" for p in sorted(Path(out).rglob("*")) if p.is_file()}
    return Upstream("cnn", out, {"runner": "cnn", "status": "ok", "result": result.to_json(), "files": files})
