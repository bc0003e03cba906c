"""The Winograd conv2 → max-pool → ReLU kernel against torch's modules: values, gradients, ties, NaN, ReLU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny import loaded_kernel
from torch import nn

from runners.kernels import winograd_pool
from runners.kernels.winograd_pool import WinogradPoolFunction


@pytest.fixture(scope="module")
def kernel() -> object:
    return loaded_kernel(winograd_pool)


def block() -> nn.Conv2d:
    torch.manual_seed(0)
    return nn.Conv2d(32, 64, 3)


def activations(n: int, size: int) -> torch.Tensor:
    """What the first block hands on: ReLU'd, about half zeros, channels_last; no exact ties in conv2's windows."""
    torch.manual_seed(1)
    x = torch.randn(n, 32, size, size).relu().contiguous(memory_format=torch.channels_last)
    return x.requires_grad_()


def both(x: torch.Tensor, conv: nn.Conv2d, grad: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """(output, input grad, weight grad, bias grad) through the modules, then through the kernel."""
    results = []
    for run in (lambda: F.relu(F.max_pool2d(conv(x), 2)), lambda: WinogradPoolFunction.apply(x, conv.weight, conv.bias)):
        conv.zero_grad()
        x.grad = None
        out = run()
        out.backward(grad)
        results.append((out.detach(), x.grad.clone(), conv.weight.grad.clone(), conv.bias.grad.clone()))
    return results


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Winograd's float32 error: about 1e-6 of the largest value (the transforms add up to 16 terms)."""
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=2e-6 * float(expected.abs().max()))


@pytest.mark.parametrize("size", [13, 12, 9, 4])
def test_kernel_matches_conv_then_pool(kernel: object, size: int) -> None:
    conv, x = block(), activations(8, size)
    pooled = (size - 2) // 2
    grad = torch.randn(8, 64, pooled, pooled)
    (ref, ref_x, ref_w, ref_b), (out, gx, gw, gb) = both(x, conv, grad)
    assert out.shape == ref.shape and out.is_contiguous(memory_format=torch.channels_last)
    assert gx.is_contiguous(memory_format=torch.channels_last)
    for actual, expected in ((out, ref), (gx, ref_x), (gw, ref_w), (gb, ref_b)):
        close(actual, expected)
    if size == 13:  # conv2's last output row and column are never pooled: input row/column 12 gets no gradient
        assert torch.equal(gx[:, :, 12], torch.zeros(8, 32, 13)) and torch.equal(gx[:, :, :, 12], torch.zeros(8, 32, 13))


def test_uniform_tiles_tie_and_the_first_maximum_wins_as_in_torch(kernel: object) -> None:
    """A constant input (the digits' background) makes all four outputs of a window equal; Winograd's
    transforms compute them alike, so the gradient goes to the first, exactly where torch sends it."""
    conv = block()
    x = torch.full((2, 32, 13, 13), 0.25).contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.rand(2, 64, 5, 5)
    (ref, ref_x, ref_w, ref_b), (out, gx, gw, gb) = both(x, conv, grad)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    assert torch.equal(gb == 0, ref_b == 0)  # the same windows pass the gradient (max > 0) ...
    for actual, expected in ((gx, ref_x), (gw, ref_w), (gb, ref_b)):  # ... to the same positions
        close(actual, expected)


def test_nan_wins_its_window_as_in_torch(kernel: object) -> None:
    conv, x = block(), activations(2, 13).detach()
    x[0, 3, 6, 6] = float("nan")
    with torch.no_grad():
        ref, out = F.relu(F.max_pool2d(conv(x), 2)), WinogradPoolFunction.apply(x, conv.weight, conv.bias)
    assert out.isnan().any()
    assert torch.equal(ref.isnan(), out.isnan())


def test_relu_blocks_the_gradient_of_windows_whose_maximum_is_not_positive(kernel: object) -> None:
    conv = block()
    with torch.no_grad():
        conv.bias.copy_(torch.linspace(-1, 1, 64))  # channels 0-31 negative, 32-63 positive
    x = torch.zeros(3, 32, 13, 13).contiguous(memory_format=torch.channels_last).requires_grad_()
    out = WinogradPoolFunction.apply(x, conv.weight, conv.bias)
    assert torch.equal(out[:, :32], torch.zeros(3, 32, 5, 5)) and (out[:, 32:] > 0).all()
    out.sum().backward()
    assert torch.equal(conv.bias.grad, torch.cat([torch.zeros(32), torch.full((32,), 3 * 25.0)]))
    assert torch.equal(conv.weight.grad, torch.zeros(64, 32, 3, 3))  # zero input: no weight gradient


def test_gradients_are_deterministic_for_a_thread_count(kernel: object) -> None:
    conv, x = block(), activations(64, 13)
    grad = torch.randn(64, 64, 5, 5)
    grads = []
    for _ in range(3):
        conv.zero_grad()
        x.grad = None
        WinogradPoolFunction.apply(x, conv.weight, conv.bias).backward(grad)
        grads.append((conv.weight.grad.clone(), x.grad.clone()))
    assert all(torch.equal(grads[0][0], w) and torch.equal(grads[0][1], gx) for w, gx in grads[1:])


def test_kernel_applies_only_where_it_computes_the_same_thing(kernel: object) -> None:
    conv, pool = block(), nn.MaxPool2d(2)
    assert winograd_pool.fits(conv, pool)
    assert not winograd_pool.fits(nn.Conv2d(32, 64, 3, stride=2), pool)
    assert not winograd_pool.fits(nn.Conv2d(32, 64, 5), pool)
    assert not winograd_pool.fits(nn.Conv2d(16, 64, 3), pool)
    assert not winograd_pool.fits(conv, nn.MaxPool2d(2, stride=1))
    x = activations(2, 13)
    assert winograd_pool.applies(x, conv.weight)
    assert not winograd_pool.applies(x.double(), conv.weight)
    assert not winograd_pool.applies(x[:, :16], conv.weight)
    assert not winograd_pool.applies(x[:, :, :3, :3], conv.weight)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not winograd_pool.applies(x, conv.weight)


@pytest.mark.parametrize("batch", [1, 3])
def test_small_and_odd_batches_with_more_threads_than_images(kernel: object, batch: int) -> None:
    """The last batch of an epoch can be smaller than the thread count: some threads get no image."""
    conv, x = block(), activations(batch, 13)
    grad = torch.randn(batch, 64, 5, 5)
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        (ref, ref_x, ref_w, ref_b), (out, gx, gw, gb) = both(x, conv, grad)
    finally:
        torch.set_num_threads(threads)
    for actual, expected in ((out, ref), (gx, ref_x), (gw, ref_w), (gb, ref_b)):
        close(actual, expected)
