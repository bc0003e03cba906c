"""Time the CNN's fused C kernels call by call, for one batch of 64, and check two builds agree bit for bit.

    python benchmarks/kernel_calls.py                          # this checkout's kernels, -march=native
    python benchmarks/kernel_calls.py --march haswell          # the same sources built for AVX2 (+ FMA) only
    python benchmarks/kernel_calls.py --against OLD/runners/kernels   # and another version of the sources, side by side

Each build is compiled here with the flags runners/kernels/build.py uses (-O3 -fopenmp and the -march
given), into a temporary folder, so nothing touches the kernels' cache. The four calls of a training
step (conv1 block forward and backward, conv2 Winograd block forward and backward) run on fixed random
inputs at the CNN's shapes; each is timed as the best of 5 rounds of --calls/5 calls, after 10 warm-up
calls. With --against, both builds run the same inputs and the script says whether every output is
identical. A build for a -march the CPU lacks cannot run: --march haswell needs AVX2 and FMA.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine_info import cpu_summary  # noqa: E402

SOURCES = HERE.parent / "runners" / "kernels"
BATCH, THREADS = 64, 2
POINTER, INT64, INT = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int


def compile_kernels(sources: Path, march: str, out: Path) -> dict[str, ctypes.CDLL]:
    compiler = os.environ.get("CC") or "cc"
    libs = {}
    for name in ("conv_pool", "winograd_pool"):
        target = out / f"{name}.so"
        subprocess.run([compiler, "-O3", f"-march={march}", "-fopenmp", "-fPIC", "-shared", f"-I{sources}",
                        "-Wno-psabi", str(sources / f"{name}.c"), "-o", str(target)], check=True)
        libs[name] = ctypes.CDLL(str(target))
    return libs


def ptr(array: np.ndarray) -> ctypes.c_void_p:
    return array.ctypes.data_as(POINTER)


def kernel_calls(libs: dict[str, ctypes.CDLL]) -> tuple[dict[str, Callable[[], None]], list[np.ndarray]]:
    """The four calls on fixed inputs (seed 0), and the arrays they write."""
    conv, wino = libs["conv_pool"], libs["winograd_pool"]
    rng = np.random.default_rng(0)

    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    n, tiles = BATCH, 25  # conv2: 13×13 inputs, 11×11 outputs, 5×5 pooled 2×2 blocks
    x1, w1, b1, g1 = normal(n, 28, 28), normal(9, 32), normal(32), normal(n, 13, 13, 32)
    out1, arg1 = np.zeros((n, 13, 13, 32), np.float32), np.zeros((n, 13, 13, 32), np.uint8)
    gw1, gb1, scratch1 = np.zeros((9, 32), np.float32), np.zeros(32, np.float32), np.zeros(THREADS * 10 * 32, np.float32)
    x2, w2, b2, g2 = normal(n, 13, 13, 32), normal(64, 32, 3, 3), normal(64), normal(n, 5, 5, 64)
    u, ut = np.zeros((16, 32, 64), np.float32), np.zeros((16, 64, 32), np.float32)
    out2, arg2 = np.zeros((n, 5, 5, 64), np.float32), np.zeros((n, 5, 5, 64), np.uint8)
    dx, du, db = np.zeros((n, 13, 13, 32), np.float32), np.zeros((16, 32, 64), np.float32), np.zeros(64, np.float32)
    scratch2 = np.zeros(THREADS * 16 * tiles * (32 + 64), np.float32)
    scratch3 = np.zeros(THREADS * (16 * tiles * (32 + 64 + 32) + 16 * 32 * 64 + 64), np.float32)
    wino.wino_weights(ptr(w2), ptr(u), ptr(ut))
    calls = {
        "conv1 block forward": lambda: conv.conv_pool_forward(
            ptr(x1), ptr(w1), ptr(b1), ptr(out1), ptr(arg1), INT64(n), INT64(28), INT64(28), INT(THREADS)),
        "conv1 block backward": lambda: conv.conv_pool_backward(
            ptr(x1), ptr(g1), ptr(arg1), ptr(gw1), ptr(gb1), INT64(n), INT64(28), INT64(28), INT(THREADS), ptr(scratch1)),
        "conv2 block forward": lambda: wino.wino_pool_forward(
            ptr(x2), ptr(u), ptr(b2), ptr(out2), ptr(arg2), INT64(n), INT64(13), INT64(13), INT(THREADS), ptr(scratch2)),
        "conv2 block backward": lambda: wino.wino_pool_backward(
            ptr(x2), ptr(g2), ptr(arg2), ptr(ut), ptr(dx), ptr(du), ptr(db), INT64(n), INT64(13), INT64(13), INT(THREADS),
            ptr(scratch3)),
    }
    return calls, [out1, arg1, gw1, gb1, out2, arg2, dx, du, db]


def time_calls(builds: list[dict[str, Callable[[], None]]], count: int) -> list[dict[str, float]]:
    """Milliseconds per call of each build: the best of 5 rounds of count/5 calls, after 10 warm-up calls; the
    builds take turns within every round, so a change of clock or load hits them alike."""
    per_round = max(1, count // 5)
    times: list[dict[str, float]] = [{} for _ in builds]
    for name in builds[0]:
        for calls in builds:
            for _ in range(10):
                calls[name]()
        best = [float("inf")] * len(builds)
        for _ in range(5):
            for index, calls in enumerate(builds):
                started = time.perf_counter()
                for _ in range(per_round):
                    calls[name]()
                best[index] = min(best[index], (time.perf_counter() - started) / per_round)
        for index in range(len(builds)):
            times[index][name] = best[index] * 1e3
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--march", default="native", help="the -march the builds are compiled for (native, haswell, ...)")
    parser.add_argument("--against", type=Path, help="a folder with another version of conv_pool.c, winograd_pool.c, build.h")
    parser.add_argument("--calls", type=int, default=200, help="timed calls of each kernel")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_summary()}")
    print(f"one batch of {BATCH}, {THREADS} threads, -O3 -march={args.march} -fopenmp; ms per call, best of 5 rounds")
    builds = {"this checkout": SOURCES} | ({"--against": args.against.resolve()} if args.against else {})
    with tempfile.TemporaryDirectory() as tmp:
        loaded = []
        for index, sources in enumerate(builds.values()):
            out = Path(tmp) / str(index)
            out.mkdir()
            loaded.append(kernel_calls(compile_kernels(sources, args.march, out)))
        times = time_calls([calls for calls, _ in loaded], args.calls)
    print(f"{'kernel call':22}" + "".join(f"{label:>16}" for label in builds))
    for name in times[0]:
        print(f"{name:22}" + "".join(f"{mine[name]:13.3f} ms" for mine in times))
    if args.against:
        (_, mine), (_, theirs) = loaded
        same = all(np.array_equal(a, b) for a, b in zip(mine, theirs, strict=True))
        print(f"outputs of the two builds: {'identical, bit for bit' if same else 'DIFFERENT'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
