"""benchmarks/cnn_throughput.py on a tiny budget: the command the README names runs and prints its figures.

No figure is asserted (timings are the benchmark's business, never a test's); only that every
line the README and the issue rely on is there and the numbers are well formed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
# one of the candidate paths, not all seven: each loop is a process of its own (about 3 s here, most of it importing
# torch), and "ours" still tunes over every candidate (the tuning record line below)
ONE_PATH = "nchw"
needs_mnist = pytest.mark.skipif(not MNIST.is_file(), reason=f"MNIST test split not at {MNIST.parent}")


@dataclass
class TinyRun:
    out: str  # what the command printed
    runs: dict[str, list[dict[str, Any]]]  # its --save-runs file: every loop's raw records


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    tmp = tmp_path_factory.mktemp("throughput")
    env = dict(os.environ, LIVING_TUNING_DIR=str(tmp))  # "ours" tunes this machine afresh, never in the user's record
    done = subprocess.run(
        [sys.executable, "benchmarks/cnn_throughput.py", "--images", "320", "--repeats", "1", "--matmul-size", "1024",
         "--candidates", ONE_PATH, "--save-runs", str(tmp / "runs.json")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env=env,
    )
    assert done.returncode == 0, done.stderr
    return TinyRun(done.stdout, json.loads((tmp / "runs.json").read_text(encoding="utf-8")))


@needs_mnist
def test_tiny_run_prints_rate_ratio_and_share_of_the_matmul_rate(tiny_run: TinyRun) -> None:
    out = tiny_run.out
    assert re.search(r"^R \(float32 torch\.mm 1024²\): \d+\.\d GFLOP/s", out, re.M)
    # the FLOP counter sees the article's CNN: 16.38 MFLOP per sample at batch 64 (the figure)
    assert "FLOPs per training sample (forward + backward, torch.utils.flop_counter): 16.38 MFLOP" in out
    assert re.search(r"^ours +\d+ \[\d+-\d+\] +\d+\.\d\d +\d+\.\d +\d+% +0\.\d{4}$", out, re.M)
    assert re.search(r"^plain DataLoader +\d+ \[", out, re.M)
    assert re.search(r"^ours / plain: \d+\.\d\dx .*target >= 1\.5x\); ours at \d+% of R", out, re.M)
    # the CPU beside every figure, each candidate path asked for, and ours against the best of them
    assert re.search(r"^CPU: .+; AVX-512: (yes \(avx512\w+( avx512\w+)*\)|no); AVX2: (yes|no)(; limited by .+)?$", out, re.M)
    assert re.search(rf"^path {ONE_PATH} +\d+ \[\d+-\d+\] ", out, re.M)
    assert not re.search(r"^path channels_last ", out, re.M)  # not asked for: not run
    assert re.search(r"^ours vs best candidate \(path \w+, \d+ images/s\): [+-]\d+\.\d% \(target: no more than 5% behind\); "
                     r"ours took path \w+$", out, re.M)
    assert re.search(r"^tuning record \(threads \w+, measured .+, in this run: \d+\.\d s; load average [\d.-]+, round spread [\d.]+\): \w+ \d+", out, re.M)
    assert re.search(r"^our path: 自动：本机实测最快的路径 \w+（本机调优记录，.*; kernels built/loaded in \d+\.\d{3} s \(not in train s\)$",
                     out, re.M)
    assert "our loop used: Adam (fused" in out or "our loop used: Adam (for-loop" in out
    assert "CUDA graph: 未用（仅 CUDA）" in out
    if "conv2 块（Winograd" in out:  # the kernels built: the rate in the FLOPs actually done is given too
        assert re.search(r"^  counted in the FLOPs our loop actually does \(7\.9\d MFLOP per sample, conv2 by Winograd\): "
                         r"\d+\.\d GFLOP/s, \d+% of R$", out, re.M)
    assert "bf16" not in out  # --bf16 not given: the opt-in loop is not run
    assert set(tiny_run.runs) == {"matmul", "ours", "plain DataLoader", f"path {ONE_PATH}"}


@needs_mnist
def test_bf16_lines_set_the_opt_in_loop_against_both_product_rates(
    tiny_run: TinyRun, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What --bf16 adds, printed by the report from the tiny run's own records plus a bf16 loop and product rate
    (the two processes --bf16 would start; the runner's bf16 loop itself is tests/runners/test_cnn.py's)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # as `python benchmarks/cnn_throughput.py` has it: machine_info
    spec = importlib.util.spec_from_file_location("cnn_throughput", REPO / "benchmarks" / "cnn_throughput.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    runs = dict(tiny_run.runs)
    runs[bench.BF16] = [{**record, "images_per_second": record["images_per_second"] / 4} for record in runs["ours"]]
    runs["matmul bf16"] = [{**record, "gflops": record["gflops"] / 5, "dtype": "bf16"} for record in runs["matmul"]]
    bench.report(argparse.Namespace(device="cpu", epochs=1, batch_size=64, repeats=1), runs)
    out = capsys.readouterr().out
    assert re.search(r"^ours, bf16 autocast \(opt-in\) +\d+ \[", out, re.M)
    line = re.search(r"^R \(bfloat16 torch\.mm 1024²\): (\d+\.\d) GFLOP/s; .* / plain: (\d+\.\d\d)x; at (\d+)% of the bfloat16 rate "
                     r"\((\d+)% of R\)$", out, re.M)
    assert line, out
    plain = runs["plain DataLoader"][0]["images_per_second"]
    assert float(line[2]) == pytest.approx(runs[bench.BF16][0]["images_per_second"] / plain, abs=0.006)
    assert int(line[3]) == pytest.approx(5 * int(line[4]), abs=5)  # a fifth of the rate: five times the share


@needs_mnist
def test_profile_step_prints_each_layers_flops_and_the_costliest_ops() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/cnn_throughput.py", "--profile-step", "--images", "320"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    layers = dict(re.findall(r"^  (conv\d|fc\d) +(\d+\.\d) MFLOP$", out, re.M))
    assert list(layers) == ["conv1", "conv2", "conv3", "fc1", "fc2"]
    # one step at batch 64 is 64 × 16.38 MFLOP (the figure), conv2 most of it
    assert sum(map(float, layers.values())) == pytest.approx(64 * 16.38, rel=1e-3)
    assert float(layers["conv2"]) == pytest.approx(856.4, abs=0.1)
    assert re.search(r"^one step: \d+\.\d\d ms under the profiler", out, re.M)
    # conv2's backward: the Winograd kernel's where it built, else oneDNN's
    assert re.search(r"^ +\d+\.\d{3} ms  x1  (WinogradPoolFunctionBackward  \[64, 64, 5, 5\]|"
                     r"aten::convolution_backward  \[64, 64, 11, 11\])", out, re.M)
