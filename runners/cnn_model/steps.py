"""The training step and epoch of the §2.5 CNN, shared by the cnn runner's recipe, the DDP reference
and benchmarks/cnn_throughput.py (so the benchmark measures exactly what the page reports)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from runners.training.cuda_graphs import GraphedStep
from runners.training.loop import LossWatch, Progress, batch_indices
from runners.training.options import adam, autocast


@dataclass
class EpochStats:
    loss: float  # mean training loss over the epoch's batches, as Keras' fit() reports it
    accuracy: float  # share of training images classified correctly while training (running)
    seconds: float


def make_optimizer(model: nn.Module, lr: float, eps: float, capturable: bool = False) -> torch.optim.Optimizer:
    device = next(model.parameters()).device
    return adam(model.parameters(), device.type, capturable=capturable, lr=lr, eps=eps)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    desc: str = "",
    epoch: int = 1,
    graphed: GraphedStep | None = None,
) -> EpochStats:
    """One pass over (x, y) in a random order: batches are index_select'ed from the resident tensor.
    Raises training.Diverged when a step's loss is nan or inf.

    `graphed` (made by `graphed_step`) replays full batches as a CUDA graph on a GPU; keep the
    same one across epochs so the graph is captured once.
    """
    model.train()
    n = len(x)
    run_step = graphed or train_step(model, optimizer, x, y)
    progress = Progress((n + batch_size - 1) // batch_size, desc)
    # running sums stay on the device: no host sync per step (matters on a GPU)
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    watch = LossWatch(epoch)
    started = time.perf_counter()
    for idx in batch_indices(n, batch_size, generator, str(x.device)):
        loss, hits = run_step(idx)
        loss_sum += loss * len(idx)
        correct += hits
        watch.add(loss)
        progress.update()
    watch.flush()
    loss, accuracy = loss_sum.item() / n, correct.item() / n  # waits for queued GPU work: time after it
    return EpochStats(loss, accuracy, time.perf_counter() - started)


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, precision: str = "float32"
) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The step on the batch `idx` of the resident (x, y): returns (mean loss, correct count), detached.

    Gradients are zeroed in place, not set to None: the same tensors every step, which a CUDA
    graph needs and which on CPU saves reallocating them. `precision` "bf16" runs the forward
    pass under bfloat16 autocast (training.autocast); the loss is always taken in float32.
    """
    loss_fn = nn.functional.cross_entropy
    mixed = autocast(str(x.device), precision)  # raises on an unknown precision before any step runs

    def step(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xb = x.index_select(0, idx)
        yb = y.index_select(0, idx)
        with mixed:
            logits = model(xb)
        loss = loss_fn(logits.float(), yb)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            return loss.detach(), (logits.argmax(1) == yb).sum()

    return step


def graphed_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, batch_size: int, enabled: bool,
    precision: str = "float32",
) -> GraphedStep:
    """`train_step` wrapped for CUDA graph replay (a plain call on CPU); the optimizer must be capturable on CUDA."""
    return GraphedStep(train_step(model, optimizer, x, y, precision), batch_size, str(x.device), enabled)
