"""Shared training helpers: profiles, batches, progress, evaluation, allocator."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from torch import nn

from runners.training import cuda_graphs, loop, options


def test_profile_resolution() -> None:
    assert options.resolve_profile("auto", "cpu") == "quick"
    assert options.resolve_profile("auto", "cuda") == "full"
    assert options.resolve_profile("full", "cpu") == "full"
    with pytest.raises(ValueError, match="'fast' is not one of auto, full, quick"):
        options.resolve_profile("fast", "cpu")


def test_batches_cover_every_index_once_and_repeat_with_the_seed() -> None:
    def order(seed: int) -> list[int]:
        gen = torch.Generator().manual_seed(seed)
        return torch.cat(list(loop.batch_indices(10, 4, gen, "cpu"))).tolist()

    assert sorted(order(0)) == list(range(10))
    assert order(0) == order(0) != order(1)
    sizes = [len(b) for b in loop.batch_indices(10, 4, torch.Generator().manual_seed(0), "cpu")]
    assert sizes == [4, 4, 2]


def test_images_are_scaled_once_to_float() -> None:
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    x = loop.to_device_images(images, "cpu")
    assert x.shape == (1, 1, 2, 2) and x.dtype == torch.float32
    assert torch.allclose(x.flatten(), torch.tensor([0.0, 1.0, 0.2, 0.4]))
    assert loop.to_device_labels(np.array([3, 7], dtype=np.uint8), "cpu").dtype == torch.int64


def test_evaluate_matches_a_direct_computation() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    x, y = torch.randn(10, 3), torch.randint(0, 4, (10,))
    loss, acc, logits = loop.evaluate(model, x, y, batch_size=3)
    with torch.no_grad():
        direct = model(x)
    assert torch.allclose(logits, direct)
    assert loss == pytest.approx(nn.functional.cross_entropy(direct, y).item())
    assert acc == pytest.approx((direct.argmax(1) == y).float().mean().item())


def test_progress_is_silent_without_a_terminal_and_draws_on_one() -> None:
    quiet = io.StringIO()
    loop.Progress(3, "epoch 1/1", quiet).update()
    assert quiet.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = loop.Progress(2, "epoch 1/1", tty)
    bar.update()
    bar.update()
    assert tty.getvalue().startswith("\repoch 1/1 [###############---------------] 1/2")
    assert tty.getvalue().endswith("\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_allocator_tuning_reports_what_it_did() -> None:
    assert options.tune_allocator().startswith("glibc mallopt")


def test_adam_uses_the_fused_kernel_on_cpu_and_says_so() -> None:
    params = [nn.Parameter(torch.ones(3))]
    fused = options.adam(params, "cpu", lr=0.1)
    if not fused.defaults.get("fused"):
        pytest.skip(f"torch {torch.__version__} has no fused CPU Adam")
    assert options.describe_optimizer(fused) == "Adam (fused)"
    # a device without a fused kernel gets torch's default (a for-loop for CPU tensors)
    plain = options.adam(params, "mps", lr=0.1)
    assert not plain.defaults.get("fused")
    assert options.describe_optimizer(plain) == "Adam (for-loop)"


def test_fused_adam_follows_the_reference_adam() -> None:
    torch.manual_seed(0)
    start = torch.randn(50)
    trajectories = []
    for make in (lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7), lambda p: options.adam(p, "cpu", lr=0.01, eps=1e-7)):
        w = nn.Parameter(start.clone())
        opt = make([w])
        for step in range(200):
            opt.zero_grad()
            ((w - step * 0.01) ** 2).sum().backward()
            opt.step()
        trajectories.append(w.detach())
    torch.testing.assert_close(trajectories[0], trajectories[1], rtol=1e-5, atol=1e-6)


def test_graphed_step_is_a_plain_call_on_cpu() -> None:
    calls: list[list[int]] = []

    def step(idx: torch.Tensor) -> tuple[torch.Tensor]:
        calls.append(idx.tolist())
        return (idx.sum(),)

    graphed = cuda_graphs.GraphedStep(step, batch_size=2, device="cpu")
    assert not graphed.enabled and graphed.status == "未用（仅 CUDA）"
    assert [int(graphed(torch.tensor([i, i + 1]))[0]) for i in range(5)] == [1, 3, 5, 7, 9]
    assert len(calls) == 5 and graphed.graph is None


class FakeCuda:
    """Stands in for torch.cuda's stream and graph API, so GraphedStep's control flow runs without a GPU.

    As on a real GPU, capture records the step without running it; replay runs what was recorded
    with the static index tensor's current contents.
    """

    def __init__(self, fail_capture: bool = False) -> None:
        self.fail_capture, self.capturing, self.events = fail_capture, False, []
        self.recorded: tuple[torch.Tensor, list[torch.Tensor]] | None = None
        outer = self

        class Graph:
            def replay(self) -> None:
                assert outer.recorded is not None
                static_idx, outs = outer.recorded
                outer.events.append(("replay", static_idx.tolist()))
                outs[0].fill_(int(static_idx.sum()))

        class Capture:
            def __init__(self, graph: Graph) -> None:
                pass

            def __enter__(self) -> None:
                outer.capturing = True

            def __exit__(self, *exc: object) -> None:
                outer.capturing = False
                if outer.fail_capture:
                    raise RuntimeError("operation not permitted when stream is capturing")

        class Stream:
            def wait_stream(self, other: object) -> None:
                pass

        class StreamContext:
            def __init__(self, stream: Stream) -> None:
                pass

            def __enter__(self) -> None:
                outer.events.append(("side stream",))

            def __exit__(self, *exc: object) -> None:
                pass

        self.api = {"CUDAGraph": Graph, "graph": Capture, "Stream": Stream, "stream": StreamContext,
                    "current_stream": Stream}

    def step(self, idx: torch.Tensor) -> tuple[torch.Tensor]:
        if self.capturing:
            out = torch.zeros((), dtype=torch.long)
            self.recorded = (idx, [out])
            self.events.append(("capture",))
            return (out,)
        self.events.append(("eager", idx.tolist()))
        return (idx.sum(),)


@pytest.mark.parametrize("fail_capture", [False, True])
def test_graphed_step_warms_up_captures_once_replays_full_batches_and_runs_the_tail_eagerly(
    monkeypatch: pytest.MonkeyPatch, fail_capture: bool
) -> None:
    fake = FakeCuda(fail_capture)
    for name, value in fake.api.items():
        monkeypatch.setattr(torch.cuda, name, value)
    graphed = cuda_graphs.GraphedStep(fake.step, batch_size=2, device="cuda:0", warmup=2)
    batches = [torch.tensor([2 * i, 2 * i + 1]) for i in range(5)] + [torch.tensor([10])]
    outputs = [graphed(idx)[0] for idx in batches]
    # each output keeps its own value: a replay must not overwrite what an earlier step returned
    assert [int(o) for o in outputs] == [1, 5, 9, 13, 17, 10]
    if fail_capture:
        assert graphed.graph is None and not graphed.enabled
        assert graphed.status.startswith("未用（捕获失败：operation not permitted")
        assert fake.events == [("side stream",), ("eager", [0, 1]), ("side stream",), ("eager", [2, 3]), ("capture",),
                               ("eager", [4, 5]), ("eager", [6, 7]), ("eager", [8, 9]), ("eager", [10])]
    else:
        assert graphed.replays == 3 and graphed.status.startswith("已用")
        assert fake.events == [("side stream",), ("eager", [0, 1]), ("side stream",), ("eager", [2, 3]), ("capture",),
                               ("replay", [4, 5]), ("replay", [6, 7]), ("replay", [8, 9]), ("eager", [10])]


def test_float32_precision_changes_nothing_and_unknown_precisions_are_refused() -> None:
    conv = nn.Conv2d(1, 2, 3)
    x = torch.rand(2, 1, 5, 5)
    with options.autocast("cpu", "float32"):
        assert conv(x).dtype == torch.float32
    assert options.precision_note("cpu") == options.precision_note("cpu", "float32") == "float32（不降精度）"
    for bad in ("fp16", "bfloat16", ""):
        with pytest.raises(ValueError, match="not one of float32, bf16"):
            options.autocast("cpu", bad)


def test_bf16_precision_computes_layers_in_bfloat16_and_keeps_float32_weights() -> None:
    conv = nn.Conv2d(1, 2, 3)
    x = torch.rand(2, 1, 5, 5)
    with options.autocast("cpu", "bf16"):
        out = conv(x)
    assert out.dtype == torch.bfloat16 and conv.weight.dtype == torch.float32
    out.float().sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.dtype == torch.float32
    note = options.precision_note("cpu", "bf16")
    assert note.startswith("bf16 自动混合精度") and "不逐位相同" in note
    assert options.native_bf16("cpu") in (True, False, None)
