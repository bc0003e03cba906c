"""001 §3.2.6–3.2.7: the CNN exported to ONNX agrees with torch, in the runner and on its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from runners import cnn, cnn_onnx  # noqa: E402  (after the skips: the module needs onnxruntime at run time)
from runners.cnn_model import Net  # noqa: E402
from reportgen.context import RunContext  # noqa: E402

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"
TINY = {"profile": "quick", "quick_train": 256, "test_limit": 256, "quick_epochs": 1, "download": False}


def test_export_runs_in_onnxruntime_with_any_batch_size(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = Net().eval()
    path = str(tmp_path / "net.onnx")
    cnn_onnx.export(model, path)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for n in (1, 5, 64):  # the batch dimension is dynamic: one file for every size
        x = torch.rand(n, 1, 28, 28)
        (out,) = session.run(["logits"], {"images": x.numpy()})
        with torch.no_grad():
            expected = model(x).numpy()
        assert out.shape == (n, 10)
        assert np.abs(out - expected).max() < 1e-4


def test_preprocess_matches_the_training_tensors() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    x = torch.from_numpy(images).unsqueeze(1).float().div_(255.0)  # runners.training.to_device_images
    assert np.array_equal(cnn_onnx.preprocess(images), x.numpy())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST test files not available at {MNIST_DIR}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIVING_MNIST_DIR", str(MNIST_DIR))
        ctx = RunContext(out_dir=tmp_path_factory.mktemp("onnx"), device="cpu", device_name="cpu", seed=0)
        result = cnn_onnx.run(cnn_onnx.Config(**TINY, latency_runs=5, batch_runs=3), ctx)
        cnn_ctx = RunContext(out_dir=tmp_path_factory.mktemp("cnn"), device="cpu", device_name="cpu", seed=0)
        reference = cnn.run(cnn.Config(**TINY), cnn_ctx)
    return result, ctx, reference


def test_runner_torch_and_onnxruntime_agree(runs) -> None:
    result, ctx, _ = runs
    m = result.metrics
    assert m["max_abs_diff"] < 1e-4 and m["mean_abs_diff"] <= m["max_abs_diff"]
    assert m["prediction_agreement"] == 1.0
    assert m["torch_accuracy"] == pytest.approx(m["ort_accuracy"])
    assert m["inputs_identical"] is True
    assert m["ort_provider"] == "CPUExecutionProvider" and m["threads"] == 1
    assert m["onnx_opset"] >= 17 and m["onnx_nodes"] == 12
    assert (ctx.out_dir / "cnn.onnx").stat().st_size == m["onnx_bytes"]
    assert "Conv ×3" in result.texts["onnx_graph"] and "batch×1×28×28" in result.texts["onnx_graph"]
    assert "def deploy" in result.texts["deploy_script"] and "def preprocess" in result.texts["deploy_script"]
    assert (ctx.out_dir / result.figures["agreement"].path).is_file()
    assert result.claims == []  # the article names ONNX as a target but states nothing numeric about it


def test_latency_table(runs) -> None:
    result = runs[0]
    table = result.tables["latency"]
    assert table.columns == ["运行时", "设备", "批大小", "每批延迟 (ms)", "每张图片 (ms)", "吞吐 (张/秒)"]
    assert [(r[0], r[2]) for r in table.rows] == [("torch", 1), ("onnxruntime", 1), ("torch", 64), ("onnxruntime", 64)]
    for row in table.rows:
        assert row[3] > 0 and row[4] == pytest.approx(row[3] / row[2], rel=0.01)
        assert row[5] == pytest.approx(row[2] * 1e3 / row[3], rel=0.01)
    assert result.metrics["ort_image_latency_seconds"] * 1e3 == pytest.approx(table.rows[1][3], rel=0.01)


def test_same_weights_as_the_cnn_runner(runs) -> None:
    """Same config, same code path: the cnn runner's numbers come out bit for bit."""
    result, _, reference = runs
    for name in ("test_accuracy", "test_loss", "train_images", "test_images", "epochs", "profile"):
        assert result.metrics[name] == reference.metrics[name]
    assert result.tables["epochs"].rows == reference.tables["epochs"].rows
    assert "quick_epochs" in result.texts["same_as_cnn"]
