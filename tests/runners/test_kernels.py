"""Building the C kernels: cache, and every way a build can fail is reported (and the modules run), never raised."""

from __future__ import annotations

import ctypes
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from reportgen.fingerprint import closure_digests
from runners.cnn_model.net import Net, kernel_provenance, kernel_status, prepare_model
from runners.kernels import build, conv_pool, winograd_pool

ROOT = Path(__file__).resolve().parents[2]
PROBE = '#include "build.h"\nint answer(void) { return 42; }\n'  # with the shared header, as the real kernels


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    source = tmp_path / "probe.c"
    source.write_text(PROBE)
    return source


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


def with_compiler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str, probe: Path) -> build.Built:
    """build.build() with `script` as the C compiler and a fresh kernel directory."""
    fake = tmp_path / "cc"
    fake.write_text(script)
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setenv("LIVING_KERNEL_DIR", str(tmp_path / "kernels"))
    return build.build("probe", probe, declare)


def test_a_build_is_cached_by_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, probe: Path) -> None:
    if not shutil.which("cc"):
        pytest.skip("no C compiler")
    monkeypatch.setenv("LIVING_KERNEL_DIR", str(tmp_path / "kernels"))
    first = build.build("probe", probe, declare)
    assert first.lib.answer() == 42 and first.how.endswith(("OpenMP 多线程", "单线程（编译器不支持 OpenMP）"))
    # the command is published in the provenance: file names only, no machine path
    assert first.command.startswith("cc -O3 -march=native") and " probe.c -o probe-" in first.command
    assert str(tmp_path) not in first.command and str(Path.home()) not in first.command
    built = sorted((tmp_path / "kernels").glob("probe-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    assert build.build("probe", probe, declare).lib.answer() == 42
    assert built[0].stat().st_mtime_ns == stamp  # loaded, not rebuilt
    probe.write_text(PROBE + "/* changed */\n")
    build.build("probe", probe, declare)
    assert len(list((tmp_path / "kernels").glob("probe-*.so"))) == 2


def test_the_kernels_c_sources_are_in_the_cnn_runners_key() -> None:
    """Editing a .c or .h file re-runs the CNN runners: the fingerprint lists them as companions."""
    for runner in ("runners.cnn", "runners.cnn_ddp"):
        files = {p.relative_to(ROOT).as_posix() for p in closure_digests(ROOT, runner, ("runners",))}
        assert {"runners/kernels/conv_pool.c", "runners/kernels/winograd_pool.c", "runners/kernels/build.h"} <= files


def test_without_a_compiler_training_falls_back_and_the_page_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                      fresh_loads: None) -> None:
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.setenv("LIVING_KERNEL_DIR", str(tmp_path))
    assert conv_pool.load() == build.Built(None, "找不到 C 编译器 no-such-compiler")
    assert kernel_status("cpu") == "conv1 块未用（找不到 C 编译器 no-such-compiler）；conv2 块未用（找不到 C 编译器 no-such-compiler）"
    notes = kernel_provenance("cpu")
    assert notes["native_kernels"] == kernel_status("cpu") and notes["kernel_compiler"] == "未编译（找不到 C 编译器）"
    assert notes["threads"] == str(torch.get_num_threads())
    model = prepare_model(Net(), "cpu", True, True)
    assert model.fused_blocks == (False, False)
    model(torch.rand(2, 1, 28, 28)).sum().backward()  # the modules' path
    assert model.conv1.weight.grad is not None


def test_status_says_why_the_kernels_were_not_used() -> None:
    assert kernel_status("cpu", enabled=False) == "未用（配置 fused_conv_pool=False）"
    assert kernel_status("cuda").startswith("未用（仅 CPU")
    assert kernel_status("cpu", precision="bf16").startswith("未用（精度 bf16")


def test_a_compile_error_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, probe: Path) -> None:
    built = with_compiler(monkeypatch, tmp_path, "#!/bin/sh\necho 'fatal: cannot compile' >&2\nexit 1\n", probe)
    assert built.lib is None and built.how == "编译或加载失败：fatal: cannot compile"
    assert not list((tmp_path / "kernels").glob("*.so"))


def test_a_library_that_does_not_load_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              probe: Path) -> None:
    # "compiles" by writing a file that is no shared library
    script = '#!/bin/sh\n[ "$1" = --version ] && exit 0\nfor a; do out=$a; done\necho junk > "$out"\n'
    built = with_compiler(monkeypatch, tmp_path, script, probe)
    assert built.lib is None and built.how.startswith("编译或加载失败：") and "kernels/probe-" in built.how


def test_march_native_only_where_the_compiler_accepts_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, probe: Path) -> None:
    """A compiler that rejects -march=native builds the kernel for its default target; the probe runs once."""
    real = shutil.which("cc")
    if not real:
        pytest.skip("no C compiler")
    log = tmp_path / "calls"
    script = (f'#!/bin/sh\necho "$*" >> {log}\n'
              'for a; do [ "$a" = -march=native ] && { echo "error: unknown value native for -march" >&2; exit 1; }; done\n'
              f'exec {real} "$@"\n')
    built = with_compiler(monkeypatch, tmp_path, script, probe)
    assert built.lib.answer() == 42 and built.compile_seconds > 0
    assert "-march" not in built.command and built.command.startswith("cc -O3 -fopenmp")
    assert "编译器不接受 -march=native" in built.how
    probes = [line for line in log.read_text().splitlines() if "-march=native" in line]
    assert len(probes) == 1  # the one probe; the kernel was never tried with it
    assert [p.read_text() for p in (tmp_path / "kernels").glob("march-native-*.txt")] == ["no"]
    again = build.build("probe", probe, declare)
    assert again.compile_seconds == 0.0 and again.command == built.command
    assert len([line for line in log.read_text().splitlines() if "-march=native" in line]) == 1


def test_a_build_from_the_cache_takes_no_compile_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, probe: Path) -> None:
    if not shutil.which("cc"):
        pytest.skip("no C compiler")
    monkeypatch.setenv("LIVING_KERNEL_DIR", str(tmp_path / "kernels"))
    assert build.build("probe", probe, declare).compile_seconds > 0
    assert build.build("probe", probe, declare).compile_seconds == 0.0
