"""The fused conv1 → max-pool → ReLU kernel against torch's modules: values, gradients, ties, NaN, fallback."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny import loaded_kernel
from torch import nn

from runners.cnn_model.net import Net, prepare_model
from runners.kernels import conv_pool, winograd_pool


@pytest.fixture(scope="module")
def kernel() -> object:
    return loaded_kernel(conv_pool)


def block(channels_last: bool = True) -> tuple[nn.Conv2d, nn.MaxPool2d]:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 32, 3)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
    return conv, nn.MaxPool2d(2)


def mnist_like(n: int, size: int = 28) -> torch.Tensor:
    """Digits on a black background: most pooling windows over the background are exact ties."""
    torch.manual_seed(1)
    x = torch.zeros(n, 1, size, size)
    lo, hi = size // 4, size * 3 // 4
    x[:, :, lo:hi, lo + 1 : hi - 1] = torch.rand(n, 1, hi - lo, hi - lo - 2)
    return x


def both(x: torch.Tensor, conv: nn.Conv2d, pool: nn.MaxPool2d, grad: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """(output, weight grad, bias grad) through the modules, then through the kernel."""
    results = []
    for run in (lambda: F.relu(pool(conv(x))), lambda: conv_pool.ConvPoolFunction.apply(x, conv.weight, conv.bias)):
        conv.zero_grad()
        out = run()
        out.backward(grad)
        results.append((out.detach(), conv.weight.grad.clone(), conv.bias.grad.clone()))
    return results


@pytest.mark.parametrize("size", [28, 27, 9])
def test_kernel_matches_conv_then_pool_with_tied_windows(kernel: object, size: int) -> None:
    conv, pool = block()
    x = mnist_like(16, size).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(16, 32, (size - 2) // 2, (size - 2) // 2)
    (ref, ref_w, ref_b), (out, w, b) = both(x, conv, pool, grad)
    assert out.shape == ref.shape and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)
    # ties resolved as torch does (the first maximum), or the gradient would go elsewhere; background
    # windows (max = bias) pass a gradient only where the bias is positive, as the ReLU does; the rest is
    # the rounding of float32 sums over 16 × 169 windows taken in another order
    close_grads(w, ref_w)
    close_grads(b, ref_b)


def close_grads(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_nan_wins_its_window_as_in_torch(kernel: object) -> None:
    conv, pool = block()
    x = mnist_like(2)
    x[0, 0, 10, 10] = float("nan")
    with torch.no_grad():
        ref, out = F.relu(pool(conv(x))), conv_pool.ConvPoolFunction.apply(x, conv.weight, conv.bias)
    assert torch.equal(ref.isnan(), out.isnan()) and out.isnan().any()
    torch.testing.assert_close(out.nan_to_num(), ref.nan_to_num(), rtol=0, atol=1e-6)


def test_relu_blocks_the_gradient_of_windows_whose_maximum_is_not_positive(kernel: object) -> None:
    conv, _ = block()
    with torch.no_grad():
        conv.bias.copy_(torch.linspace(-1, 1, 32))  # channels 0-15 negative, 16-31 positive
    x = torch.zeros(4, 1, 28, 28)  # every window is a tie at the bias
    out = conv_pool.ConvPoolFunction.apply(x, conv.weight, conv.bias)
    assert torch.equal(out[:, :16], torch.zeros(4, 16, 13, 13)) and (out[:, 16:] > 0).all()
    out.sum().backward()
    assert torch.equal(conv.bias.grad[:16], torch.zeros(16)) and torch.equal(conv.bias.grad[16:], torch.full((16,), 4 * 169.0))
    assert torch.equal(conv.weight.grad, torch.zeros(32, 1, 3, 3))  # zero input: no weight gradient anywhere


def test_gradients_are_deterministic_for_a_thread_count(kernel: object) -> None:
    conv, _ = block()
    x, grad = mnist_like(64), torch.randn(64, 32, 13, 13)
    grads = []
    for _ in range(3):
        conv.zero_grad()
        conv_pool.ConvPoolFunction.apply(x, conv.weight, conv.bias).backward(grad)
        grads.append(conv.weight.grad.clone())
    assert all(torch.equal(grads[0], g) for g in grads[1:])


@pytest.mark.parametrize("fused", [(True, False), (True, True)])
def test_whole_model_gradients_agree_with_the_unfused_model(kernel: object, fused: tuple[bool, bool]) -> None:
    x, y = mnist_like(64), torch.arange(64) % 10
    torch.manual_seed(0)
    model = prepare_model(Net(), "cpu", True, True)
    assert model.fused_blocks == (True, winograd_pool.load().lib is not None)
    runs = []
    for blocks in ((False, False), fused):
        model.fused_blocks = blocks
        model.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        runs.append((loss.item(), {name: p.grad.clone() for name, p in model.named_parameters()}))
    (ref_loss, ref), (loss, grads) = runs
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    for name in ref:
        close_grads(grads[name], ref[name])


def test_evaluation_and_tracing_use_the_modules(kernel: object) -> None:
    model = prepare_model(Net(), "cpu", True, True).eval()
    calls = []
    model.conv1.register_forward_hook(lambda *_: calls.append("conv1"))
    with torch.no_grad():
        model(mnist_like(2))
    assert calls == ["conv1"]


def test_kernel_applies_only_where_it_computes_the_same_thing(kernel: object) -> None:
    conv, pool = block()
    assert conv_pool.fits(conv, pool)
    assert not conv_pool.fits(nn.Conv2d(1, 32, 3, padding=1), pool)
    assert not conv_pool.fits(nn.Conv2d(3, 32, 3), pool)
    assert not conv_pool.fits(conv, nn.MaxPool2d(3))
    x = mnist_like(2)
    assert conv_pool.applies(x, conv.weight)
    assert not conv_pool.applies(x.double(), conv.weight)
    assert not conv_pool.applies(x.clone().requires_grad_(), conv.weight)  # the kernel gives no input gradient
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not conv_pool.applies(x, conv.weight)


def test_layout_follows_the_path_training_takes(kernel: object) -> None:
    """Fused: the kernels' NHWC outputs set the layout, weights stay as they are. bf16 (the kernels are
    float32 only) and unfused runs: the modules run, with channels_last weights."""
    from runners.cnn_model.recipe import TrainConfig, new_model
    from runners.cnn_model.tuning import CANDIDATES

    both = CANDIDATES["both_kernels"]
    fused = new_model(TrainConfig(), "cpu", both)
    assert all(fused.fused_blocks) and fused.conv2.weight.is_contiguous()
    for config in (TrainConfig(precision="bf16"), TrainConfig(fused_conv_pool=False)):
        model = new_model(config, "cpu", both)
        assert not any(model.fused_blocks)
        assert model.conv2.weight.is_contiguous(memory_format=torch.channels_last) and not model.conv2.weight.is_contiguous()
