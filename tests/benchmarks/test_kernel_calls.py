"""benchmarks/kernel_calls.py: the four kernel calls timed for two builds, and their outputs compared bit for bit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPILER = shutil.which(os.environ.get("CC") or "cc")


@pytest.mark.skipif(not COMPILER and not os.environ.get("LIVING_REQUIRE_KERNEL"), reason="no C compiler (cc or $CC)")
def test_two_builds_are_timed_call_by_call_and_compared(tmp_path: Path) -> None:
    other = tmp_path / "kernels"
    shutil.copytree(REPO / "runners" / "kernels", other)
    source = other / "conv_pool.c"
    source.write_text(source.read_text(encoding="utf-8").replace("acc[q][u] += v * wk", "acc[q][u] -= v * wk"),
                      encoding="utf-8")  # another version whose conv1 outputs differ
    run = [sys.executable, "benchmarks/kernel_calls.py", "--calls", "5", "--against"]
    same = subprocess.run([*run, "runners/kernels"], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert same.returncode == 0, same.stderr
    assert re.search(r"^CPU: .+; AVX-512: (yes|no)", same.stdout, re.M)
    for call in ("conv1 block forward", "conv1 block backward", "conv2 block forward", "conv2 block backward"):
        assert re.search(rf"^{call} +\d+\.\d{{3}} ms +\d+\.\d{{3}} ms$", same.stdout, re.M), call
    assert same.stdout.rstrip().endswith("outputs of the two builds: identical, bit for bit")
    changed = subprocess.run([*run, str(other)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.rstrip().endswith("outputs of the two builds: DIFFERENT")
