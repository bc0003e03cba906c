"""Where data sets live on disk, and their identity for the cache key (standard library only).

`reportgen` calls `identity()` when it decides what is stale, so a result computed on the
offline test split is recomputed once the official training split becomes available.

MNIST files are looked for, in order, in:
  1. the runner's `data_dir` config value, if set;
  2. $LIVING_MNIST_DIR;
  3. ./data/mnist (inside the project);
  4. ../shared/data/mnist (beside the project: the organisation's read-only data folder);
  5. the download cache, $LIVING_DATA_CACHE/mnist or ~/.cache/living-article/mnist.
"""

from __future__ import annotations

import os
from pathlib import Path

MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}


def download_cache(name: str) -> Path:
    base = os.environ.get("LIVING_DATA_CACHE") or str(Path.home() / ".cache" / "living-article")
    return Path(base) / name


def mnist_dirs(data_dir: str = "", root: Path | None = None) -> list[Path]:
    """Candidate directories in search order (existing or not)."""
    base = root or Path.cwd()
    dirs = [Path(data_dir)] if data_dir else []
    if os.environ.get("LIVING_MNIST_DIR"):
        dirs.append(Path(os.environ["LIVING_MNIST_DIR"]))
    dirs += [base / "data" / "mnist", base.parent / "shared" / "data" / "mnist", download_cache("mnist")]
    return dirs


def find_file(filename: str, dirs: list[Path]) -> Path | None:
    for directory in dirs:
        candidate = directory / filename
        if candidate.is_file():
            return candidate
    return None


def identity(name: str, root: Path) -> dict[str, str]:
    """Which files of the data set would be used, by name and size (cheap: no hashing)."""
    if name != "mnist":
        raise ValueError(f"unknown data set {name!r}")
    dirs = mnist_dirs(root=root)
    found = {}
    for key, (filename, _md5) in sorted(MNIST_FILES.items()):
        path = find_file(filename, dirs)
        found[key] = f"{path.stat().st_size} bytes" if path else "absent"
    return found


def mnist_identity(root: Path) -> dict[str, str]:
    """The data-set hook of the registry (`RunnerSpec.dataset`)."""
    return identity("mnist", root)
