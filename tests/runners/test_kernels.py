"""Building the C kernels: cache, and every way a build can fail is reported (and the modules run), never raised."""

from __future__ import annotations

import ctypes
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from runners import conv_pool, kernels, winograd_pool
from runners.cnn_model import Net, kernel_status, prepare_model

SOURCE = kernels.PRELUDE + "int answer(void) { return 42; }\n"


def declare(lib: object) -> None:
    lib.answer.restype = ctypes.c_int


@pytest.fixture
def fresh_loads() -> Iterator[None]:
    """Each kernel module loads once per process: forget that around a test that changes the compiler."""
    for module in (conv_pool, winograd_pool):
        module.load.cache_clear()
    yield
    for module in (conv_pool, winograd_pool):
        module.load.cache_clear()


def with_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str) -> tuple[object, str]:
    """kernels.build() with `script` as the C compiler and a fresh kernel directory."""
    fake = tmp_path / "cc"
    fake.write_text(script)
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setenv("LIVING_KERNEL_DIR", str(tmp_path / "kernels"))
    return kernels.build("probe", SOURCE, declare)


def test_a_build_is_cached_by_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not shutil.which("cc"):
        pytest.skip("no C compiler")
    monkeypatch.setenv("LIVING_KERNEL_DIR", str(tmp_path))
    lib, how = kernels.build("probe", SOURCE, declare)
    assert lib.answer() == 42 and how.endswith(("OpenMP 多线程", "单线程（编译器不支持 OpenMP）"))
    built = sorted(tmp_path.glob("probe-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    assert kernels.build("probe", SOURCE, declare)[0].answer() == 42
    assert built[0].stat().st_mtime_ns == stamp  # loaded, not rebuilt
    kernels.build("probe", SOURCE + "/* changed */\n", declare)
    assert len(list(tmp_path.glob("probe-*.so"))) == 2


def test_without_a_compiler_training_falls_back_and_the_page_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                      fresh_loads: None) -> None:
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setenv("LIVING_KERNEL_DIR", str(tmp_path))
    assert conv_pool.load() == (None, "找不到 C 编译器 no-such-compiler")
    assert kernel_status("cpu") == "conv1 块未用（找不到 C 编译器 no-such-compiler）；conv2 块未用（找不到 C 编译器 no-such-compiler）"
    model = prepare_model(Net(), "cpu", True, True)
    assert model.fused_blocks == (False, False)
    model(torch.rand(2, 1, 28, 28)).sum().backward()  # the modules' path
    assert model.conv1.weight.grad is not None


def test_status_says_why_the_kernels_were_not_used() -> None:
    assert kernel_status("cpu", enabled=False) == "未用（配置 fused_conv_pool=False）"
    assert kernel_status("cuda").startswith("未用（仅 CPU")
    assert kernel_status("cpu", precision="bf16").startswith("未用（精度 bf16")


def test_a_compile_error_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lib, why = with_compiler(monkeypatch, tmp_path, "#!/bin/sh\necho 'fatal: cannot compile' >&2\nexit 1\n")
    assert lib is None and why == "编译或加载失败：fatal: cannot compile"
    assert not list((tmp_path / "kernels").glob("*.so"))


def test_a_library_that_does_not_load_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # "compiles" by writing a file that is no shared library
    script = '#!/bin/sh\n[ "$1" = --version ] && exit 0\nfor a; do out=$a; done\necho junk > "$out"\n'
    lib, why = with_compiler(monkeypatch, tmp_path, script)
    assert lib is None and why.startswith("编译或加载失败：") and "kernels/probe-" in why
