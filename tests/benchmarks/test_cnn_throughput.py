"""benchmarks/cnn_throughput.py on a tiny budget: the command the README names runs and prints its figures.

No figure is asserted (timings are the benchmark's business, never a test's); only that every
line the README and the issue rely on is there and the numbers are well formed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
# two of the candidate paths (the stock one and the kernels'), not all seven: each is a process of its own, and
# "ours" still tunes over every candidate (the tuning record line below)
TWO_PATHS = ("nchw", "both_kernels")


@pytest.mark.skipif(not MNIST.is_file(), reason=f"MNIST test split not at {MNIST.parent}")
def test_tiny_run_prints_rate_ratio_and_share_of_the_matmul_rate(tmp_path: Path) -> None:
    env = dict(os.environ, LIVING_TUNING_DIR=str(tmp_path))  # "ours" tunes this machine afresh, never in the user's record
    done = subprocess.run(
        [sys.executable, "benchmarks/cnn_throughput.py", "--images", "320", "--repeats", "1", "--matmul-size", "1024", "--bf16",
         "--candidates", ",".join(TWO_PATHS)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False, env=env,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^R \(float32 torch\.mm 1024²\): \d+\.\d GFLOP/s", out, re.M)
    # the FLOP counter sees the article's CNN: 16.38 MFLOP per sample at batch 64 (the figure)
    assert "FLOPs per training sample (forward + backward, torch.utils.flop_counter): 16.38 MFLOP" in out
    assert re.search(r"^ours +\d+ \[\d+-\d+\] +\d+\.\d\d +\d+\.\d +\d+% +0\.\d{4}$", out, re.M)
    assert re.search(r"^plain DataLoader +\d+ \[", out, re.M)
    assert re.search(r"^ours / plain: \d+\.\d\dx .*target >= 1\.5x\); ours at \d+% of R", out, re.M)
    # the CPU beside every figure, each candidate path, and ours against the best of them
    assert re.search(r"^CPU: .+; AVX-512: (yes \(avx512\w+( avx512\w+)*\)|no); AVX2: (yes|no)(; limited by .+)?$", out, re.M)
    for name in TWO_PATHS:
        assert re.search(rf"^path {name} +\d+ \[\d+-\d+\] ", out, re.M), name
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
    # the opt-in bf16 loop, against both product rates
    assert re.search(r"^ours, bf16 autocast \(opt-in\) +\d+ \[", out, re.M)
    assert re.search(r"^R \(bfloat16 torch\.mm 1024²\): \d+\.\d GFLOP/s; .* / plain: \d+\.\d\dx; at \d+% of the bfloat16 rate \(\d+% of R\)$",
                     out, re.M)


@pytest.mark.skipif(not MNIST.is_file(), reason=f"MNIST test split not at {MNIST.parent}")
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
