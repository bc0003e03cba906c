"""runners.mnist (loader, datasets): IDX parsing, MD5 checks, mirror fallback and the offline split (no network)."""

from __future__ import annotations

import gzip
import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from runners.mnist import datasets, loader
from runners.mnist.loader import MnistError

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def idx_bytes(array: np.ndarray, compress: bool = True) -> bytes:
    magic = 0x00000803 if array.ndim == 3 else 0x00000801
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    return gzip.compress(raw, mtime=0) if compress else raw


def synthetic(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_split(
    directory: Path, monkeypatch: pytest.MonkeyPatch, prefix: str, n: int, seed: int = 1, labels_n: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Write synthetic `prefix` (train/test) files and make their MD5s the expected ones."""
    directory.mkdir(parents=True, exist_ok=True)
    images, labels = synthetic(n, seed)
    labels = labels[:labels_n] if labels_n is not None else labels
    for key, array in ((f"{prefix}_images", images), (f"{prefix}_labels", labels)):
        name = datasets.MNIST_FILES[key][0]
        data = idx_bytes(array)
        (directory / name).write_bytes(data)
        monkeypatch.setitem(datasets.MNIST_FILES, key, (name, hashlib.md5(data).hexdigest()))
    return images, labels


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory where no real MNIST is found (no ../shared, empty cache, no env dir)."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.delenv("LIVING_MNIST_DIR", raising=False)
    monkeypatch.setenv("LIVING_DATA_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_gz_and_raw(tmp_path: Path, compress: bool) -> None:
    images, labels = synthetic(5)
    (tmp_path / "img").write_bytes(idx_bytes(images, compress))
    (tmp_path / "lab").write_bytes(idx_bytes(labels, compress))
    got_images, got_labels = loader.read_idx(tmp_path / "img"), loader.read_idx(tmp_path / "lab")
    assert got_images.dtype == np.uint8 and got_images.shape == (5, 28, 28)
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels)
    assert got_images.flags.writeable


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x00\x00\x08\x02" + b"\x00" * 20, "bad magic"),
        (idx_bytes(synthetic(5)[0], compress=False)[:-1], "truncated"),
        (idx_bytes(synthetic(5)[0], compress=False) + b"\x00", "trailing"),
        (idx_bytes(synthetic(5)[0], compress=False)[:10], "truncated IDX header"),
        (idx_bytes(synthetic(5)[0])[:-20], "gzip"),
        (idx_bytes(np.zeros((2, 27, 28), np.uint8)), "27×28"),
        (b"\x00\x00", "truncated"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path: Path, data: bytes, words: str) -> None:
    path = tmp_path / "broken-idx3-ubyte.gz"
    path.write_bytes(data)
    with pytest.raises(MnistError) as err:
        loader.read_idx(path)
    assert str(path) in str(err.value) and words in str(err.value)


def test_verify_md5(tmp_path: Path) -> None:
    path = tmp_path / "file.gz"
    path.write_bytes(b"abc")
    actual = hashlib.md5(b"abc").hexdigest()
    loader.verify_md5(path, actual)
    with pytest.raises(MnistError) as err:
        loader.verify_md5(path, "0" * 32)
    assert str(path) in str(err.value) and "0" * 32 in str(err.value) and actual in str(err.value)


class FakeOpener:
    """Serves `bodies[url]`; an exception instead of bytes is raised for that URL."""

    def __init__(self, bodies: dict[str, bytes | Exception]) -> None:
        self.bodies, self.calls = bodies, []

    def __call__(self, url: str, timeout: float) -> io.BytesIO:
        self.calls.append((url, timeout))
        body = self.bodies[url]
        if isinstance(body, Exception):
            raise body
        return io.BytesIO(body)


def test_download_falls_back_to_second_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = b"pretend mnist"
    name = datasets.MNIST_FILES["train_labels"][0]
    monkeypatch.setitem(datasets.MNIST_FILES, "train_labels", (name, hashlib.md5(body).hexdigest()))
    first, second = loader.MIRRORS
    opener = FakeOpener({first + name: urllib.error.URLError("no route"), second + name: body})
    path = loader.download("train_labels", tmp_path / "cache", timeout=3.0, opener=opener)
    assert path == tmp_path / "cache" / name and path.read_bytes() == body
    assert opener.calls == [(first + name, 3.0), (second + name, 3.0)]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [name]  # no temporary file left


def test_download_all_mirrors_fail(tmp_path: Path) -> None:
    name = datasets.MNIST_FILES["train_images"][0]
    first, second = loader.MIRRORS
    # the second mirror answers, but with the wrong bytes: never kept
    opener = FakeOpener({first + name: urllib.error.URLError("no route"), second + name: b"not mnist"})
    with pytest.raises(MnistError) as err:
        loader.download("train_images", tmp_path, opener=opener)
    message = str(err.value)
    assert name in message and first in message and second in message
    assert "no route" in message and "MD5 mismatch" in message
    assert list(tmp_path.iterdir()) == []


def test_download_refuses_http(tmp_path: Path) -> None:
    opener = FakeOpener({})
    with pytest.raises(MnistError) as err:
        loader.download("test_labels", tmp_path, mirrors=("http://example.org/mnist/",), opener=opener)
    assert "http://example.org/mnist/" in str(err.value) and "refused" in str(err.value)
    assert opener.calls == []


def test_offline_split(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, labels = write_split(isolated / "data", monkeypatch, "test", 20)
    data = loader.load_mnist(str(isolated / "data"), download=False, offline_train=15, seed=0)
    assert not data.official
    assert data.train.images.shape == (15, 28, 28) and data.test.images.shape == (5, 28, 28)
    assert data.train.labels.shape == (15,) and data.test.labels.shape == (5,)
    # the two parts together are exactly the test file, each image still with its label
    merged = np.concatenate([data.train.images, data.test.images])
    order = [int(np.flatnonzero((images == m).all(axis=(1, 2)))[0]) for m in merged]
    assert sorted(order) == list(range(20)) and order != list(range(20))
    assert np.array_equal(np.concatenate([data.train.labels, data.test.labels]), labels[order])
    assert set(data.files) == {"test_images", "test_labels"}
    assert "官方训练集不可用" in data.description and "未启用下载" in data.description
    assert "15 张训练、5 张评估" in data.description and "种子 0" in data.description

    again = loader.load_mnist(str(isolated / "data"), download=False, offline_train=15, seed=0)
    assert np.array_equal(again.train.images, data.train.images) and again.description == data.description
    other = loader.load_mnist(str(isolated / "data"), download=False, offline_train=15, seed=1)
    assert not np.array_equal(other.train.labels, data.train.labels) or not np.array_equal(
        other.train.images, data.train.images
    )
    with pytest.raises(ValueError):
        loader.load_mnist(str(isolated / "data"), download=False, offline_train=20)


def test_subset(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVING_MNIST_DIR", str(isolated / "env"))
    write_split(isolated / "env", monkeypatch, "test", 20)
    data = loader.load_mnist(download=False, offline_train=15)
    small = data.subset(train=4, test=2)
    assert np.array_equal(small.train.images, data.train.images[:4]) and len(small.test.labels) == 2
    assert small.description.startswith(data.description) and "前 4 张" in small.description
    assert data.subset(test=100).test is data.test and data.subset() is data
    with pytest.raises(ValueError):
        data.subset(train=-1)


def test_count_mismatch_and_bad_md5(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_split(isolated / "d", monkeypatch, "test", 20, labels_n=19)
    with pytest.raises(MnistError) as err:
        loader.load_mnist(str(isolated / "d"), download=False, offline_train=10)
    assert "t10k-images-idx3-ubyte.gz" in str(err.value) and "t10k-labels-idx1-ubyte.gz" in str(err.value)
    # a label file saved under the image file's name
    labels_file = isolated / "d" / "t10k-labels-idx1-ubyte.gz"
    images_file = isolated / "d" / "t10k-images-idx3-ubyte.gz"
    images_file.write_bytes(labels_file.read_bytes())
    monkeypatch.setitem(datasets.MNIST_FILES, "test_images", (images_file.name, hashlib.md5(images_file.read_bytes()).hexdigest()))
    with pytest.raises(MnistError, match="expected images"):
        loader.load_mnist(str(isolated / "d"), download=False, offline_train=10)
    monkeypatch.setitem(datasets.MNIST_FILES, "test_labels", ("t10k-labels-idx1-ubyte.gz", "f" * 32))
    with pytest.raises(MnistError, match="MD5 mismatch.*" + "f" * 32):
        loader.load_mnist(str(isolated / "d"), download=False, offline_train=10)


def test_missing_test_files(isolated: Path) -> None:
    with pytest.raises(MnistError) as err:
        loader.load_mnist(str(isolated / "nowhere"), download=False)
    message = str(err.value)
    assert "t10k-images-idx3-ubyte.gz" in message and str(isolated / "nowhere") in message
    assert "LIVING_MNIST_DIR" in message and "download" in message


def test_official_split_from_local_files(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_split(isolated / "d", monkeypatch, "test", 6)
    train_images, _ = write_split(isolated / "d", monkeypatch, "train", 9, seed=2)
    data = loader.load_mnist(str(isolated / "d"), download=False)
    assert data.official and len(data.train.labels) == 9 and len(data.test.labels) == 6
    assert np.array_equal(data.train.images, train_images)  # official split keeps the file order
    assert data.description.startswith("官方 MNIST：训练 9 张、测试 6 张") and set(data.files) == set(
        datasets.MNIST_FILES
    )


def test_load_downloads_missing_training_files(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_split(isolated / "d", monkeypatch, "test", 6)
    write_split(isolated / "served", monkeypatch, "train", 9, seed=2)
    bodies: dict[str, bytes | Exception] = {}
    for key in ("train_images", "train_labels"):
        name = datasets.MNIST_FILES[key][0]
        bodies[loader.MIRRORS[0] + name] = (isolated / "served" / name).read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", FakeOpener(bodies))
    data = loader.load_mnist(str(isolated / "d"))
    assert data.official and len(data.train.labels) == 9
    assert data.files["train_images"] == str(isolated / "cache" / "mnist" / "train-images-idx3-ubyte.gz")
    assert loader.MIRRORS[0] in data.description


def test_load_falls_back_when_download_fails(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_split(isolated / "d", monkeypatch, "test", 20)
    fail = {m + datasets.MNIST_FILES["train_images"][0]: urllib.error.URLError("offline") for m in loader.MIRRORS}
    monkeypatch.setattr(urllib.request, "urlopen", FakeOpener(fail))
    data = loader.load_mnist(str(isolated / "d"), offline_train=15)
    assert not data.official and "下载失败" in data.description and "offline" in data.description
    assert all(m in data.description for m in loader.MIRRORS)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="no offline MNIST test split beside the project")
def test_real_test_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIVING_MNIST_DIR", raising=False)
    monkeypatch.setenv("LIVING_DATA_CACHE", str(tmp_path / "cache"))
    data = loader.load_mnist(str(SHARED_MNIST), download=False)
    assert not data.official
    assert data.train.images.shape == (8000, 28, 28) and data.test.images.shape == (2000, 28, 28)
    assert data.train.images.dtype == np.uint8 and data.test.labels.dtype == np.uint8
    labels = np.concatenate([data.train.labels, data.test.labels])
    assert set(np.unique(labels).tolist()) == set(range(10))
    assert data.files["test_images"] == str(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    assert "8,000 张训练、2,000 张评估" in data.description
