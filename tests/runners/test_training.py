"""Shared training helpers: profiles, batches, progress, evaluation, allocator."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from torch import nn

from runners import training


def test_profile_resolution() -> None:
    assert training.resolve_profile("auto", "cpu") == "quick"
    assert training.resolve_profile("auto", "cuda") == "full"
    assert training.resolve_profile("full", "cpu") == "full"
    with pytest.raises(ValueError, match="'fast' is not one of auto, full, quick"):
        training.resolve_profile("fast", "cpu")


def test_batches_cover_every_index_once_and_repeat_with_the_seed() -> None:
    def order(seed: int) -> list[int]:
        gen = torch.Generator().manual_seed(seed)
        return torch.cat(list(training.batch_indices(10, 4, gen, "cpu"))).tolist()

    assert sorted(order(0)) == list(range(10))
    assert order(0) == order(0) != order(1)
    sizes = [len(b) for b in training.batch_indices(10, 4, torch.Generator().manual_seed(0), "cpu")]
    assert sizes == [4, 4, 2]


def test_images_are_scaled_once_to_float() -> None:
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    x = training.to_device_images(images, "cpu")
    assert x.shape == (1, 1, 2, 2) and x.dtype == torch.float32
    assert torch.allclose(x.flatten(), torch.tensor([0.0, 1.0, 0.2, 0.4]))
    assert training.to_device_labels(np.array([3, 7], dtype=np.uint8), "cpu").dtype == torch.int64


def test_evaluate_matches_a_direct_computation() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    x, y = torch.randn(10, 3), torch.randint(0, 4, (10,))
    loss, acc, logits = training.evaluate(model, x, y, batch_size=3)
    with torch.no_grad():
        direct = model(x)
    assert torch.allclose(logits, direct)
    assert loss == pytest.approx(nn.functional.cross_entropy(direct, y).item())
    assert acc == pytest.approx((direct.argmax(1) == y).float().mean().item())


def test_progress_is_silent_without_a_terminal_and_draws_on_one() -> None:
    quiet = io.StringIO()
    training.Progress(3, "epoch 1/1", quiet).update()
    assert quiet.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = training.Progress(2, "epoch 1/1", tty)
    bar.update()
    bar.update()
    assert tty.getvalue().startswith("\repoch 1/1 [###############---------------] 1/2")
    assert tty.getvalue().endswith("\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_allocator_tuning_reports_what_it_did() -> None:
    assert training.tune_allocator().startswith("glibc mallopt")
