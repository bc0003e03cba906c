"""Replaying a whole training step as one CUDA graph (a plain call on CPU and MPS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class GraphedStep:
    """Runs `step(idx)` (a whole training step: forward, backward, optimizer) and returns its outputs;
    on CUDA, full batches replay a CUDA graph captured once, so a step costs one launch.

    Small models at batch 64 spend most of a GPU step launching kernels; a graph removes that.
    The first `warmup` full batches run eagerly on a side stream (cuDNN picks its algorithms,
    optimizer state is created), the next one is captured and replayed. A batch of another size
    (the last of an epoch) runs eagerly. The step must zero gradients in place
    (`zero_grad(set_to_none=False)`) so eager and replayed steps use the same gradient tensors,
    must not sync with the host, and the optimizer must be capturable. Outputs are cloned, since
    the graph overwrites its own on the next replay. If capture fails, the reason is kept in
    `status` and every step runs eagerly. On CPU and MPS this is just `step(idx)`.
    """

    def __init__(self, step: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], batch_size: int, device: str,
                 enabled: bool = True, warmup: int = 3) -> None:
        self.step, self.batch_size, self.warmup = step, batch_size, warmup
        self.enabled = enabled and device.split(":")[0] == "cuda"
        self.graph: Any = None
        self.side: Any = None
        self.static_idx: torch.Tensor | None = None
        self.static_out: tuple[torch.Tensor, ...] = ()
        self.eager_full_batches = 0
        self.replays = 0
        self.status = "未用（仅 CUDA）" if not self.enabled else "未用（还没有满批）"

    def __call__(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.enabled or len(idx) != self.batch_size:
            return self.step(idx)
        if self.graph is not None:
            assert self.static_idx is not None
            self.static_idx.copy_(idx)
            self.graph.replay()
            self.replays += 1
            return tuple(t.clone() for t in self.static_out)
        if self.eager_full_batches < self.warmup:
            self.eager_full_batches += 1
            return self._on_side_stream(idx)
        if self._capture(idx):
            return self(idx)
        return self.step(idx)

    def _on_side_stream(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.side is None:  # one stream for every warm-up step, as in PyTorch's CUDA graph recipe
            self.side = torch.cuda.Stream()
        side = self.side
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self.step(idx)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _capture(self, idx: torch.Tensor) -> bool:
        """Record one step with `idx`'s shape; True when the graph is ready (nothing has run yet)."""
        self.static_idx = idx.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.static_out = self.step(self.static_idx)
        except RuntimeError as exc:  # some op cannot be captured here: stay eager, say why
            self.enabled = False
            self.status = "未用（捕获失败：" + " ".join(str(exc).split())[:160] + "）"
            return False
        self.graph = graph
        self.status = f"已用：每个满批（{self.batch_size}）重放同一个 CUDA graph"
        return True
