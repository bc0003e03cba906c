"""benchmarks/cnn_throughput.py on a tiny budget: the command the README names runs and prints its figures.

No figure is asserted (timings are the benchmark's business, never a test's); only that every
line the README and the issue rely on is there and the numbers are well formed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO.parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"


@pytest.mark.skipif(not MNIST.is_file(), reason=f"MNIST test split not at {MNIST.parent}")
def test_tiny_run_prints_rate_ratio_and_share_of_the_matmul_rate() -> None:
    done = subprocess.run(
        [sys.executable, "benchmarks/cnn_throughput.py", "--images", "320", "--repeats", "1", "--matmul-size", "1024"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^R \(float32 torch\.mm 1024²\): \d+\.\d GFLOP/s", out, re.M)
    # the FLOP counter sees the article's CNN: 16.38 MFLOP per sample at batch 64 (the figure)
    assert "FLOPs per training sample (forward + backward, torch.utils.flop_counter): 16.38 MFLOP" in out
    assert re.search(r"^ours +\d+ \[\d+-\d+\] +\d+\.\d\d +\d+\.\d +\d+% +0\.\d{4}$", out, re.M)
    assert re.search(r"^plain DataLoader +\d+ \[", out, re.M)
    assert re.search(r"^ours / plain: \d+\.\d\dx .*; ours at \d+% of R", out, re.M)
    assert "our loop used: Adam (fused" in out or "our loop used: Adam (for-loop" in out
    assert "CUDA graph: 未用（仅 CUDA）" in out
