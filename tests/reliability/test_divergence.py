"""A training run that diverges stops with "loss became nan at epoch E, step S" (runners.training.loop.Diverged),
which the page shows as the runner's error, instead of reporting meaningless numbers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from toyproject import REPO

from reportgen.child import build_config
from reportgen.context import RunContext
from runners import cnn, gan, lstm
from runners.cnn_model import recipe
from runners.mnist.loader import MnistData, Split
from runners.training import loop as training

pytestmark = pytest.mark.compute  # trains the CNN (tests/conftest.py orders the parts)

MNIST = REPO.parent / "shared" / "data" / "mnist"
TINY = {"quick_train": 128, "quick_epochs": 1, "download": False, "profile": "quick", "batch_size": 32}


def test_check_finite_names_the_epoch_and_the_first_bad_step() -> None:
    training.check_finite(1.5, 3, 1)
    training.check_finite(torch.tensor([0.5, 0.25]), 1, 1)
    with pytest.raises(training.Diverged, match=r"^loss became nan at epoch 2, step 37$"):
        training.check_finite(float("nan"), 37, 2)
    with pytest.raises(training.Diverged, match=r"^loss became inf at epoch 1, step 12$"):
        training.check_finite(torch.tensor([0.1, 0.2, math.inf, math.nan]), 10, 1)
    with pytest.raises(training.Diverged, match=r"^L_D or L_G became nan at epoch 3, step 2$"):
        training.check_finite(torch.tensor([[0.7, 0.7], [0.7, math.nan]]), 1, 3, "L_D or L_G")


def test_loss_watch_checks_every_step_once_per_batch_of_steps() -> None:
    watch = training.LossWatch(epoch=2, every=4)
    losses = [0.9, 0.8, 0.7, 0.6, 0.5, math.nan, 0.4]
    with pytest.raises(training.Diverged, match=r"^loss became nan at epoch 2, step 6$"):
        for loss in losses:
            watch.add(torch.tensor(loss))
        watch.flush()
    assert watch.first == 5  # steps 1-4 were checked (one sync), the bad one is in the second batch


def fake_mnist(n: int = 128) -> MnistData:
    """Random digits: divergence needs no real data, and these tests need no MNIST files."""
    rng = np.random.default_rng(0)

    def split() -> Split:
        return Split(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8))

    return MnistData(split(), split(), False, "随机数据（测试用）。", {})


def ctx(tmp_path: Path) -> RunContext:
    return RunContext(out_dir=tmp_path, device="cpu", device_name="cpu", seed=0)


def test_cnn_with_a_huge_learning_rate_diverges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recipe, "load_mnist", lambda *a, **k: fake_mnist())  # cnn trains by its recipe
    config = build_config(cnn.Config, {**TINY, "lr": 1e6})
    with pytest.raises(training.Diverged, match=r"^loss became (nan|inf) at epoch 1, step \d+$"):
        cnn.run(config, ctx(tmp_path))


def poisoned(loss_fn):  # noqa: ANN001, ANN202 (wraps a torch loss function)
    """The loss, times nan from the third call on: a run that diverges at a known step."""
    calls = {"n": 0}

    def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        loss = loss_fn(*args, **kwargs)
        return loss * math.nan if calls["n"] >= 3 else loss

    return wrapped


def test_lstm_divergence_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lstm, "load_mnist", lambda *a, **k: fake_mnist())
    monkeypatch.setattr(lstm.nn.functional, "cross_entropy", poisoned(lstm.nn.functional.cross_entropy))
    with pytest.raises(training.Diverged, match=r"^loss became nan at epoch 1, step 3$"):
        lstm.run(build_config(lstm.Config, TINY), ctx(tmp_path))


def test_gan_divergence_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gan, "load_mnist", lambda *a, **k: fake_mnist())
    monkeypatch.setattr(gan.F, "binary_cross_entropy", poisoned(gan.F.binary_cross_entropy))
    # L_D sums two BCE calls per step, then L_G makes a third: the third call poisons step 1's L_G
    with pytest.raises(training.Diverged, match=r"^L_D or L_G became nan at epoch 1, step 1$"):
        gan.run(build_config(gan.Config, TINY), ctx(tmp_path))


def test_the_runner_page_shows_the_divergence(tmp_path: Path) -> None:
    if not MNIST.is_dir():
        pytest.skip(f"{MNIST} not found")
    config = json.dumps({**TINY, "lr": 1e6})
    env = {**os.environ, "LIVING_MNIST_DIR": str(MNIST), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "reportgen.child", "cnn", "--registry", "runners.registry",
                    "--out", str(tmp_path), "--config", config], env=env, capture_output=True, timeout=300)
    record = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert record["status"] == "error" and record["error"]["type"] == "Diverged"
    assert record["error"]["message"].startswith("loss became ") and "at epoch 1, step " in record["error"]["message"]
