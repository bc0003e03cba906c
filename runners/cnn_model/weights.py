"""The trained §2.5 CNN as a file: how the cnn runner hands its model to the deployment runners.

The cnn runner trains once and writes `WEIGHTS` as an artifact of its result (`save_trained`: kept
for the runners that build on it, not published); cnn_onnx and cnn_compress declare
`needs=("cnn",)` and read it back (`load_trained`), so 训练 → 模型压缩 / 模型转换 is one pipeline
and the model they convert and compress is the one the cnn page shows.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from reportgen.api import Result
from reportgen.context import ARTIFACTS_DIR, Upstream
from runners.cnn_model.net import Net
from runners.training.metric_labels import metric

WEIGHTS = "model.pt"  # the cnn runner's trained state_dict (ctx.artifact / Upstream.path)


def plain_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights as CPU tensors in the default (NCHW) layout: the same bytes whichever layout trained them."""
    return {name: value.detach().to("cpu").contiguous() for name, value in model.state_dict().items()}


def state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """What torch.save writes for `state`: written to a buffer, so the archive's inner folder name is
    torch's fixed "archive" rather than one taken from a file name (same bytes wherever it is saved)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def save_trained(model: torch.nn.Module, path: Path) -> int:
    """Write the trained weights for the downstream runners; returns the file's size in bytes."""
    data = state_bytes(plain_state(model))
    path.write_bytes(data)
    return len(data)


def weights_file(cnn: Upstream) -> Path:
    """Where the cnn runner's stored result keeps `WEIGHTS`. Named with its artifacts folder, so it is
    found whether or not the record lists its files (the result.json of a child run by hand has none)."""
    return cnn.path(f"{ARTIFACTS_DIR}/{WEIGHTS}")


def load_trained(path: Path) -> Net:
    """The cnn runner's trained model from its weights file: CPU, float32, NCHW, eval mode."""
    model = Net()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


# The cnn runner's training metrics that a deployment page repeats for the model it received.
TRAINING_METRICS = ("profile", "epochs", "train_images", "test_accuracy", "test_loss", "train_seconds",
                    "images_per_second", "data_official", "device")


def report_training(result: Result, cnn: Upstream) -> None:
    """Repeat how the received model was trained (cnn's metrics, epoch table and data source), under
    the names the cnn page uses: read from its stored result, not recomputed."""
    metrics = cnn.metrics
    for name in TRAINING_METRICS:
        if name in metrics:
            metric(result, name, metrics[name])
    epochs = cnn.result.get("tables", {}).get("epochs")
    if epochs:
        result.table("epochs", epochs["columns"], epochs["rows"],
                     caption="cnn 运行器的训练过程（本页的模型是它最后一轮结束时的权重）：" + epochs.get("caption", ""),
                     title="所用模型的训练过程")
    source = cnn.result.get("texts", {}).get("data_source")
    if source:
        result.text("data_source", source, title="所用数据", caption="训练这个模型的 MNIST 图片（cnn 运行器记录）。")
