"""MNIST for the training runners: find, verify (MD5), optionally download, and parse the IDX files.

numpy only (no torch), so runners decide themselves how to turn the arrays into tensors.
When the official training split is unavailable (offline machines hold only the t10k files),
`load_mnist` splits the 10,000 test images with a fixed seed and says so in `description`,
so the page never presents such numbers as results on the official split.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from runners.mnist import datasets

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_MAGIC = {0x00000801: 1, 0x00000803: 3}  # labels (N,), images (N, rows, cols)
_MAX_DOWNLOAD = 64 << 20  # the largest MNIST file is ~9.9 MB; a bigger answer is not MNIST


class MnistError(Exception):
    """A data file is missing, corrupt or could not be downloaded (the message names the file)."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8, (N, 28, 28)
    labels: np.ndarray  # uint8, (N,)


@dataclass(frozen=True)
class MnistData:
    train: Split
    test: Split
    official: bool  # False: both splits come from the official test file
    description: str  # Chinese, for the page
    files: dict[str, str]  # MNIST_FILES key -> path used

    def subset(self, train: int | None = None, test: int | None = None) -> MnistData:
        """The first `train`/`test` items of each split (None: all; more than there are: all)."""
        notes, splits = [], {}
        for name, split, n, word in (("train", self.train, train, "训练"), ("test", self.test, test, "评估")):
            if n is not None and n < 0:
                raise ValueError(f"subset: {name} must be >= 0, got {n}")
            if n is not None and n < len(split.labels):
                split = Split(split.images[:n], split.labels[:n])
                notes.append(f"{word}集的前 {n:,} 张")
            splits[name] = split
        if not notes:
            return self
        text = f"{self.description}本次只使用其中{'、'.join(notes)}。"
        return replace(self, train=splits["train"], test=splits["test"], description=text)


def read_idx(path: Path) -> np.ndarray:
    """Parse a gzip or raw IDX file; images must be 28×28 and the data exactly as long as the header says."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MnistError(f"{path}: cannot read: {exc}") from exc
    if raw[:2] == b"\x1f\x8b":  # detect gzip by content, not by name: renamed copies still work
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise MnistError(f"{path}: unreadable gzip data ({exc})") from exc
    if len(raw) < 4:
        raise MnistError(f"{path}: truncated: {len(raw)} bytes, no IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _MAGIC:
        raise MnistError(f"{path}: bad magic number 0x{magic:08x} (expected 0x00000801 or 0x00000803)")
    ndim = _MAGIC[magic]
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise MnistError(f"{path}: truncated IDX header ({len(raw)} bytes, need {start})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and dims[1:] != (28, 28):
        raise MnistError(f"{path}: images are {dims[1]}×{dims[2]}, expected 28×28")
    size = int(np.prod(dims))
    if len(raw) - start != size:
        what = "truncated" if len(raw) - start < size else "trailing bytes"
        raise MnistError(f"{path}: {what}: header {dims} needs {size} data bytes, file has {len(raw) - start}")
    # a copy, so the arrays are writable (torch.from_numpy warns on read-only buffers)
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=start).reshape(dims).copy()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # an integrity check, not security (works under FIPS)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str) -> None:
    try:
        actual = _md5(Path(path))
    except OSError as exc:
        raise MnistError(f"{path}: cannot read for MD5 check: {exc}") from exc
    if actual != expected:
        raise MnistError(f"{path}: MD5 mismatch: expected {expected}, actual {actual} (corrupt or not MNIST)")


class _HttpsOnlyRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to https:// URLs: a mirror must not downgrade the transfer."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if not newurl.startswith("https://"):
            raise urllib.error.URLError(f"refused redirect to {newurl} (only https:// is used)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def https_opener(context: Any = None) -> Callable[..., Any]:
    """An `urlopen`-like callable that refuses redirects away from HTTPS (optionally with a TLS context)."""
    handlers: list[Any] = [_HttpsOnlyRedirect()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers).open


_STDLIB_URLOPEN = urllib.request.urlopen


def _fetch(
    key: str, target_dir: Path, mirrors: tuple[str, ...], timeout: float, opener: Callable[..., Any]
) -> tuple[Path, str]:
    """Download one file; return (path, mirror used)."""
    if opener is _STDLIB_URLOPEN:  # the plain default follows https→http redirects; ours does not
        opener = https_opener()
    name, expected = datasets.MNIST_FILES[key]
    target_dir = Path(target_dir)
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MnistError(f"{target_dir / name}: cannot create the download directory: {exc}") from exc
    errors = []
    for mirror in mirrors:
        if not mirror.startswith("https://"):  # unauthenticated transport would make the cache poisonable
            errors.append(f"{mirror}: refused (only https:// mirrors are used)")
            continue
        tmp: Path | None = None
        try:
            fd, tmp_name = tempfile.mkstemp(dir=target_dir, prefix=f".{name}.", suffix=".part")
            tmp, digest, size = Path(tmp_name), hashlib.md5(usedforsecurity=False), 0
            with os.fdopen(fd, "wb") as out, opener(mirror + name, timeout=timeout) as response:
                final = response.geturl() if hasattr(response, "geturl") else mirror + name
                if not str(final).startswith("https://"):
                    raise MnistError(f"refused: the transfer ended at {final}, not an https:// URL")
                for chunk in iter(lambda r=response: r.read(1 << 16), b""):
                    size += len(chunk)
                    if size > _MAX_DOWNLOAD:
                        raise MnistError(f"more than {_MAX_DOWNLOAD} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != expected:
                raise MnistError(f"MD5 mismatch: expected {expected}, actual {digest.hexdigest()}")
            # only a verified file gets the real name, so a cache never holds a partial download
            os.replace(tmp, target_dir / name)
            return target_dir / name, mirror
        except (OSError, ValueError, http.client.HTTPException, MnistError) as exc:
            errors.append(f"{mirror}: {exc}")
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
    raise MnistError(f"{name}: download failed from every mirror: " + "; ".join(errors))


def download(
    key: str, target_dir: Path, mirrors: tuple[str, ...] = MIRRORS, timeout: float = 20.0,
    opener: Callable[..., Any] = urllib.request.urlopen,
) -> Path:
    """Fetch MNIST_FILES[key] into target_dir over HTTPS, trying each mirror; keep it only if its MD5 matches."""
    return _fetch(key, target_dir, mirrors, timeout, opener)[0]


def _show(path: Path) -> str:
    """A path as the page shows it: relative to the project when near it, `~` for home, else absolute."""
    path = Path(path).absolute()
    try:
        rel = os.path.relpath(path, Path.cwd())
    except ValueError:  # another drive (Windows)
        rel = os.pardir + os.sep + os.pardir
    if not rel.startswith(os.pardir + os.sep + os.pardir):
        return rel
    home = str(Path.home())
    return "~" + str(path)[len(home) :] if str(path).startswith(home + os.sep) else str(path)


def _load_pair(paths: dict[str, Path], images_key: str, labels_key: str) -> Split:
    images, labels = read_idx(paths[images_key]), read_idx(paths[labels_key])
    if images.ndim != 3 or labels.ndim != 1:  # e.g. an image file saved under a label file's name
        raise MnistError(
            f"{paths[images_key]}, {paths[labels_key]}: expected images (N, 28, 28) and labels (N,), "
            f"got shapes {images.shape} and {labels.shape}"
        )
    if len(images) != len(labels):
        raise MnistError(
            f"{paths[images_key]} has {len(images)} images but {paths[labels_key]} has {len(labels)} labels"
        )
    return Split(images, labels)


def load_mnist(data_dir: str = "", download: bool = True, offline_train: int = 8000, seed: int = 0) -> MnistData:
    """The official split when its four files are found or downloadable, else a seeded split of t10k."""
    dirs = datasets.mnist_dirs(data_dir)
    found = {key: datasets.find_file(name, dirs) for key, (name, _md5) in datasets.MNIST_FILES.items()}
    paths = {key: path for key, path in found.items() if path is not None}
    mirror_of: dict[str, str] = {}
    # test files first: without them nothing works; after the first failure the rest is not tried
    # (an offline machine would otherwise wait for every mirror's timeout once per file)
    missing = sorted((k for k in datasets.MNIST_FILES if k not in paths), key=lambda k: not k.startswith("test"))
    missing_names = "、".join(datasets.MNIST_FILES[k][0] for k in missing)
    why = f"本地未找到 {missing_names}，且未启用下载"
    failure = "download disabled"
    if missing and download:
        try:
            for key in missing:
                paths[key], mirror_of[key] = _fetch(
                    key, datasets.download_cache("mnist"), MIRRORS, 20.0, urllib.request.urlopen
                )
        except (MnistError, OSError) as exc:  # OSError: the cache directory cannot be created
            why, failure = f"本地未找到 {missing_names}，下载失败：{exc}", f"download failed: {exc}"
    lacking = [datasets.MNIST_FILES[k][0] for k in ("test_images", "test_labels") if k not in paths]
    if lacking:
        raise MnistError(
            f"MNIST test files not found: {', '.join(lacking)}; looked in "
            + ", ".join(str(d) for d in dirs)
            + f" ({failure}). Put the files in one of these directories, or set "
            "LIVING_MNIST_DIR to a directory holding them, or allow the download (download=True)."
        )
    official = "train_images" in paths and "train_labels" in paths
    used = list(datasets.MNIST_FILES) if official else ["test_images", "test_labels"]
    for key in used:
        verify_md5(paths[key], datasets.MNIST_FILES[key][1])

    def origin(keys: list[str]) -> str:
        places = [
            f"从镜像 {mirror_of[k]} 下载，缓存于 {_show(paths[k].parent)}" if k in mirror_of else f"{_show(paths[k].parent)} 目录"
            for k in keys
        ]
        return "；".join(dict.fromkeys(places))  # each place once, in order

    test = _load_pair(paths, "test_images", "test_labels")
    files = {key: str(paths[key]) for key in used}
    if official:
        train = _load_pair(paths, "train_images", "train_labels")
        text = f"官方 MNIST：训练 {len(train.labels):,} 张、测试 {len(test.labels):,} 张（文件来自 {origin(used)}）。"
        return MnistData(train, test, True, text, files)
    total = len(test.labels)
    if not 0 < offline_train < total:
        raise ValueError(f"offline_train must be between 1 and {total - 1}, got {offline_train}")
    order = np.random.default_rng(seed).permutation(total)
    head, tail = order[:offline_train], order[offline_train:]
    text = (
        f"官方训练集不可用（{why}）：本页使用官方测试集 t10k（{total:,} 张，来自 {origin(used)}），"
        f"按固定种子 {seed} 随机划分为 {offline_train:,} 张训练、{total - offline_train:,} 张评估。"
    )
    return MnistData(
        Split(test.images[head], test.labels[head]), Split(test.images[tail], test.labels[tail]), False, text, files
    )
