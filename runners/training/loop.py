"""The in-memory batch loop of the training runners: data on the device, batches, progress,
divergence checks and evaluation.

The loop keeps the whole data set as one tensor on the training device and draws batches by
indexing it, with no `DataLoader` and no per-sample work: on MNIST-sized data the model, not the
input pipeline, should be the cost (see benchmarks/cnn_throughput.py).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from reportgen.streams import progress_reporter


def to_device_images(images: np.ndarray, device: str, channels_last: bool = False) -> torch.Tensor:
    """uint8 N×28×28 → float32 N×1×28×28 in [0, 1] on the device, converted once."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).unsqueeze(1).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def to_device_labels(labels: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(labels.astype(np.int64)).to(device)


def batch_indices(n: int, batch_size: int, generator: torch.Generator, device: str) -> Iterator[torch.Tensor]:
    """A fresh random order each epoch, cut into batches (the last one may be smaller)."""
    order = torch.randperm(n, generator=generator).to(device)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


class Progress:
    """A one-line progress bar on a terminal; in a build (under reportgen, where stderr is no
    terminal) a message such as "epoch 1/2, step 60/125 (40.2 steps/s)" through the build's
    progress channel (`RunContext.progress`) at most every `every` seconds and at the last step;
    silent elsewhere (tests, CI). `report` replaces the channel (a callable taking the message)."""

    def __init__(
        self, total: int, desc: str, stream: Any = None, report: Callable[[str], object] | None = None, every: float = 1.0
    ) -> None:
        self.total, self.desc, self.done = total, desc, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.report = report if report is not None else progress_reporter()
        self.every, self.reported = every, -math.inf
        self.started = time.perf_counter()

    def update(self, steps: int = 1, note: str = "") -> None:
        self.done += steps
        if not self.enabled and self.report is None:
            return
        now = time.perf_counter()
        rate = self.done / max(1e-9, now - self.started)
        if self.report is not None and (now - self.reported >= self.every or self.done >= self.total):
            self.reported = now
            self.report(f"{self.desc}, step {self.done}/{self.total} ({rate:.1f} steps/s)" + (f" {note}" if note else ""))
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / max(1, self.total))
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r{self.desc} [{bar}] {self.done}/{self.total} {rate:.1f} it/s {note}")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


class Diverged(FloatingPointError):
    """Training produced a non-finite loss: every number after it would be meaningless."""


def check_finite(loss: torch.Tensor | float, step: int, epoch: int, name: str = "loss") -> None:
    """Raise Diverged ("loss became nan at epoch 2, step 37") if `loss` is nan or ±inf.

    `loss` is one value for `step`, or a tensor whose first dimension holds the losses of
    consecutive steps starting at `step` (the first bad one is named). Reading a tensor waits
    for the device, so callers on an accelerator batch the check (see LossWatch).
    """
    if not isinstance(loss, torch.Tensor):
        if not math.isfinite(loss):
            raise Diverged(f"{name} became {loss} at epoch {epoch}, step {step}")
        return
    values = loss.detach().reshape(len(loss) if loss.ndim else 1, -1)
    bad = ~torch.isfinite(values).all(dim=1)
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        value = values[first][~torch.isfinite(values[first])][0].item()
        raise Diverged(f"{name} became {value} at epoch {epoch}, step {step + first}")


def check_diverged(losses: list[torch.Tensor], models: list[nn.Module], step: int, epoch: int, name: str) -> None:
    """After a step failed: raise Diverged if an earlier step's loss or the weights are no longer finite
    (a loss that rejects nan inputs fails one step after the divergence, with a less telling message)."""
    if losses:
        check_finite(torch.stack(losses), 1, epoch, name)
    if any(not bool(torch.isfinite(p).all()) for model in models for p in model.parameters()):
        raise Diverged(f"{name} became nan at epoch {epoch}, step {step}")


class LossWatch:
    """Checks every step's loss with one host sync per `every` steps (and at `flush`), not per step.

    Steps are numbered from 1 within the epoch. On a CPU the sync costs nothing; on a GPU a
    per-step `.item()` would stall the queue, so the detached losses are kept and stacked.
    """

    def __init__(self, epoch: int, every: int = 100, name: str = "loss") -> None:
        self.epoch, self.every, self.name = epoch, every, name
        self.pending: list[torch.Tensor] = []
        self.first = 1  # step number of pending[0]

    def add(self, loss: torch.Tensor) -> None:
        self.pending.append(loss.detach())
        if len(self.pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            check_finite(torch.stack(self.pending), self.first, self.epoch, self.name)
            self.first += len(self.pending)
            self.pending.clear()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, float, torch.Tensor]:
    """Mean cross-entropy, accuracy and the logits of the whole set (model in eval mode)."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    loss = nn.functional.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(1) == y).float().mean().item()
    return loss, accuracy, logits
