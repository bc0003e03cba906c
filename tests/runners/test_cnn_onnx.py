"""001 §3.2.6–3.2.7: the CNN exported to ONNX agrees with torch, in the runner and on its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from tiny import run_tiny  # noqa: E402

from reportgen.context import Upstream  # noqa: E402
from runners import cnn_onnx  # noqa: E402  (after the skips: the module needs onnxruntime at run time)
from runners.cnn_model import weights  # noqa: E402
from runners.cnn_model.net import Net  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TINY = {"test_limit": 256, "download": False, "latency_runs": 5, "batch_runs": 3}


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


def test_the_exported_file_holds_no_machine_path_and_is_the_same_from_any_checkout(tmp_path: Path) -> None:
    """The exporter records each node's Python stack (absolute paths of this checkout and of the Python
    installation); export strips them, so the published cnn.onnx leaks no home directory and two
    checkouts of one commit write the same bytes."""
    torch.manual_seed(1)
    model = Net().eval()
    first, second = tmp_path / "a" / "cnn.onnx", tmp_path / "b" / "cnn.onnx"
    for path in (first, second):
        path.parent.mkdir()
        cnn_onnx.export(model, str(path))
    data = first.read_bytes()
    for leak in {str(REPO), str(REPO.resolve()), str(Path.home()), str(Path.home().resolve())}:
        assert leak.encode() not in data, leak
    assert b"stack_trace" not in data and b".py\"" not in data and b'File "' not in data
    assert second.read_bytes() == data
    import onnx

    onnx.checker.check_model(onnx.load(str(first)), full_check=True)  # still a valid model


def test_preprocess_matches_the_training_tensors() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    x = torch.from_numpy(images).unsqueeze(1).float().div_(255.0)  # runners.training.loop.to_device_images
    assert np.array_equal(cnn_onnx.preprocess(images), x.numpy())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, cnn_upstream: Upstream):
    out = tmp_path_factory.mktemp("onnx")
    result = run_tiny(cnn_onnx, out, TINY, {"cnn": cnn_upstream})
    return result, out, cnn_upstream


def test_runner_torch_and_onnxruntime_agree(runs) -> None:
    result, out, _ = runs
    m = result.metrics
    assert m["max_abs_diff"] < 1e-4 and m["mean_abs_diff"] <= m["max_abs_diff"]
    assert m["prediction_agreement"] == 1.0
    assert m["torch_accuracy"] == pytest.approx(m["ort_accuracy"])
    assert m["inputs_identical"] is True
    assert m["ort_provider"] == "CPUExecutionProvider" and m["threads"] == 1
    assert m["onnx_opset"] >= 17 and m["onnx_nodes"] == 12
    assert (out / "cnn.onnx").stat().st_size == m["onnx_bytes"]
    assert m["test_images"] == 256
    assert "Conv ×3" in result.texts["onnx_graph"] and "batch×1×28×28" in result.texts["onnx_graph"]
    assert "def deploy" in result.texts["deploy_script"] and "def preprocess" in result.texts["deploy_script"]
    assert (out / result.figures["agreement"].path).is_file()
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


def test_the_model_is_the_cnn_runners(runs) -> None:
    """Nothing is trained here: the exported model is cnn's weights file, and the page repeats cnn's training."""
    result, _, cnn = runs
    for name in ("test_accuracy", "test_loss", "train_images", "epochs", "profile", "train_seconds"):
        assert result.metrics[name] == cnn.metrics[name]
    assert result.tables["epochs"].rows == cnn.result["tables"]["epochs"]["rows"]
    assert result.texts["data_source"] == cnn.result["texts"]["data_source"]
    # the cnn runner evaluated the same weights in its training layout: rounding apart, the same score
    assert result.metrics["torch_accuracy"] == pytest.approx(cnn.metrics["test_accuracy"], abs=1 / 256 + 1e-6)
    model = weights.load_trained(weights.weights_file(cnn))
    x = torch.rand(3, 1, 28, 28)
    (out,) = ort.InferenceSession(str(runs[1] / "cnn.onnx"), providers=["CPUExecutionProvider"]).run(
        ["logits"], {"images": x.numpy()})
    with torch.no_grad():
        assert np.abs(out - model(x).numpy()).max() < 1e-4


def test_without_the_cnn_result_the_runner_says_what_it_needs(tmp_path: Path) -> None:
    from reportgen.context import UpstreamError

    with pytest.raises(UpstreamError, match="needs"):
        run_tiny(cnn_onnx, tmp_path, TINY)
