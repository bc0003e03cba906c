"""The fused conv1 → max-pool → ReLU kernel against torch's modules: values, gradients, ties, NaN, fallback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from runners import conv_pool
from runners.cnn_model import Net, prepare_model


@pytest.fixture(scope="module")
def kernel() -> object:
    lib, why = conv_pool.load()
    if lib is None:
        if os.environ.get("LIVING_REQUIRE_KERNEL"):  # CI has a C compiler: there the kernel must build
            pytest.fail(why)
        pytest.skip(why)
    return lib


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


def test_whole_model_gradients_agree_with_the_unfused_model(kernel: object) -> None:
    x, y = mnist_like(64), torch.arange(64) % 10
    torch.manual_seed(0)
    model = prepare_model(Net(), "cpu", True, True)
    assert model.fuse_first_block is True
    runs = []
    for fuse in (False, True):
        model.fuse_first_block = fuse
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


def test_without_a_compiler_training_falls_back_and_the_page_says_why(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setenv("LIVING_KERNEL_DIR", str(tmp_path))
    conv_pool.load.cache_clear()
    try:
        assert conv_pool.load() == (None, "未用（找不到 C 编译器 no-such-compiler）")
        assert conv_pool.status("cpu") == "未用（找不到 C 编译器 no-such-compiler）"
        model = prepare_model(Net(), "cpu", True, True)
        assert model.fuse_first_block is False
        model(mnist_like(2)).sum().backward()  # the modules' path
        assert model.conv1.weight.grad is not None
    finally:
        conv_pool.load.cache_clear()
    assert conv_pool.status("cpu", enabled=False) == "未用（配置 fused_conv_pool=False）"
    assert conv_pool.status("cuda").startswith("未用（仅 CPU")
    assert conv_pool.status("cpu", precision="bf16").startswith("未用（精度 bf16")


def load_with_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str) -> tuple[object, str]:
    """conv_pool.load() with `script` as the C compiler and a fresh kernel directory."""
    fake = tmp_path / "cc"
    fake.write_text(script)
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setenv("LIVING_KERNEL_DIR", str(tmp_path / "kernels"))
    conv_pool.load.cache_clear()
    try:
        return conv_pool.load()
    finally:
        conv_pool.load.cache_clear()


def test_a_compile_error_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lib, why = load_with_compiler(monkeypatch, tmp_path, "#!/bin/sh\necho 'fatal: cannot compile' >&2\nexit 1\n")
    assert lib is None and why == "未用（编译或加载失败：fatal: cannot compile）"
    assert not list((tmp_path / "kernels").glob("*.so"))


def test_layout_follows_the_path_training_takes(kernel: object) -> None:
    """Fused: the kernel's NHWC output sets the layout, weights stay as they are. bf16 (the kernel is
    float32 only) and unfused runs: the modules run, with channels_last weights."""
    from runners.cnn_trained import TrainConfig, new_model

    fused = new_model(TrainConfig(), "cpu", True)
    assert fused.fuse_first_block and fused.conv2.weight.is_contiguous()
    for config in (TrainConfig(precision="bf16"), TrainConfig(fused_conv_pool=False)):
        model = new_model(config, "cpu", True)
        assert not model.fuse_first_block
        assert model.conv2.weight.is_contiguous(memory_format=torch.channels_last) and not model.conv2.weight.is_contiguous()


def test_a_library_that_does_not_load_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # "compiles" by writing a file that is no shared library
    script = '#!/bin/sh\n[ "$1" = --version ] && exit 0\nfor a; do out=$a; done\necho junk > "$out"\n'
    lib, why = load_with_compiler(monkeypatch, tmp_path, script)
    assert lib is None and why.startswith("未用（编译或加载失败：") and "kernels/conv_pool-" in why
