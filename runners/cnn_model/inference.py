"""Inference on the test split for the deployment runners (cnn_onnx, cnn_compress): the evaluation
images, accuracy, and timing that holds up on a shared machine."""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from runners.mnist.loader import load_mnist
from runners.training import loop


@dataclass(frozen=True)
class EvalSplit:
    images: np.ndarray  # uint8 N×28×28, as read from the files
    labels: np.ndarray  # uint8 N
    x: torch.Tensor  # float32 N×1×28×28 in [0, 1], NCHW on the CPU: what the trained model was evaluated on
    y: torch.Tensor  # int64 N


@dataclass(frozen=True)
class EvalConfig:
    """The config fields of a deployment runner that say which evaluation images it uses."""

    data_dir: str = ""  # where the MNIST files are looked for first (runners/mnist/datasets.py)
    download: bool = True
    test_limit: int = 0  # 0: the whole evaluation split, as the cnn runner evaluates


def eval_split(config: EvalConfig) -> EvalSplit:
    """The evaluation images of the cnn runner's data rules (the same split whatever the training budget)."""
    test = load_mnist(config.data_dir, config.download).subset(test=config.test_limit or None).test
    return EvalSplit(test.images, test.labels, loop.to_device_images(test.images, "cpu"),
                     loop.to_device_labels(test.labels, "cpu"))


@contextlib.contextmanager
def threads(n: int) -> Iterator[int]:
    """torch's intra-op threads set to n (0: unchanged) inside the block, restored after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n or previous)
    try:
        yield n or previous
    finally:
        torch.set_num_threads(previous)


def median_seconds(fn: Callable[[], object], runs: int, warmup: int = 5) -> float:
    """Median wall time of fn() after warm-up (the median shrugs off scheduler hiccups on a shared machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def sig3(x: float) -> float:
    """Three significant digits: timings on a shared machine are not more precise than that."""
    return float(f"{x:.3g}")


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, torch.Tensor]:
    logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    return (logits.argmax(1) == y).float().mean().item(), logits
