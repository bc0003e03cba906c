"""The cnn runner's training recipe (000 §2.5): its settings, data rules, model and training loop.

runners/cnn.py trains with it once and writes the weights (runners/cnn_model/weights.py); cnn_onnx
and cnn_compress read that file instead of training again. cnn_ddp trains the same recipe in one
process as the reference its data-parallel run is compared with: on a CPU, the same settings and
thread count give the same weights bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from reportgen.api import Result
from runners.cnn_model.net import Net, TrainPath, prepare_path
from runners.cnn_model.steps import graphed_step, make_optimizer, train_epoch
from runners.mnist.loader import MnistData, load_mnist
from runners.training import loop, options
from runners.training.metric_labels import metric

EPOCH_COLUMNS = ["轮次", "训练损失", "训练准确率", "测试损失", "测试准确率"]


@dataclass(frozen=True)
class TrainConfig:
    """The cnn runner's settings; cnn_ddp subclasses it with a shorter quick budget."""

    profile: str = "auto"  # auto: full on an accelerator, quick on a CPU
    epochs: int = 5  # the article's fit(epochs=5)
    batch_size: int = 64
    lr: float = 1e-3  # Keras Adam defaults
    eps: float = 1e-7
    train_limit: int = 0  # 0: every training image the profile allows
    test_limit: int = 0
    quick_train: int = 8000
    quick_epochs: int = 2
    data_dir: str = ""
    download: bool = True
    seed: int = 0
    # how training computes the same function (runners/cnn_model/tuning.py's CANDIDATES): "auto" is the
    # fastest measured on this machine (a CPU, float32), else a candidate's name
    path: str = "auto"
    # switches the path obeys: False turns off NHWC on a CPU / the conv → pool → ReLU C kernels (runners/kernels/)
    channels_last: bool = True
    fused_conv_pool: bool = True
    cuda_graphs: bool = True  # on a GPU, replay each full-batch step as one CUDA graph
    # "bf16": forward pass under bfloat16 autocast, ~1.4x faster steps on a CPU with native bf16
    # (benchmarks/cnn_throughput.py --bf16) but not the article's float32 arithmetic: opt-in
    precision: str = "float32"


@dataclass
class Data:
    profile: str
    epochs: int
    x: torch.Tensor
    y: torch.Tensor
    xt: torch.Tensor
    yt: torch.Tensor
    description: str  # Chinese, for the page
    official: bool
    channels_last: bool
    arrays: MnistData  # the same images and labels as read (uint8 numpy), for figures and demonstrations


@dataclass
class Trained:
    model: torch.nn.Module
    rows: list[list[float]]  # per epoch: epoch, train loss, train accuracy, test loss, test accuracy
    seconds: float  # in the epochs' loops, without the evaluations after them
    test_logits: torch.Tensor  # of the last epoch's evaluation
    optimizer: str  # which implementation ran (options.describe_optimizer)
    cuda_graph: str  # whether steps replayed a CUDA graph, and why not


def load(config: TrainConfig, device: str, channels_last: bool | None = None) -> Data:
    """The data for this config: profile rules, subsets and tensor layout (NHWC on a CPU with `channels_last`,
    by default the config's switch)."""
    kind = torch.device(device).type  # "cuda:1" (a DDP rank's device) is a CUDA device too
    profile = options.resolve_profile(config.profile, kind)
    # the offline split is fixed (seed 0), so runs with other training seeds score the same images
    data = load_mnist(config.data_dir, config.download)
    epochs = config.epochs if profile == "full" else config.quick_epochs
    limits = [n for n in (config.train_limit, config.quick_train if profile == "quick" else 0) if n > 0]
    data = data.subset(train=min(limits) if limits else None, test=config.test_limit or None)
    note = f"quick 档：只训练 {epochs} 轮、至多 {config.quick_train:,} 张训练图片（文中是 {config.epochs} 轮全部图片）。" if profile == "quick" else ""
    channels_last = (config.channels_last if channels_last is None else channels_last) and kind == "cpu"
    return Data(
        profile, epochs,
        loop.to_device_images(data.train.images, device, channels_last),
        loop.to_device_labels(data.train.labels, device),
        loop.to_device_images(data.test.images, device, channels_last),
        loop.to_device_labels(data.test.labels, device),
        data.description + note, data.official, channels_last, data,
    )


def relayout(data: Data, channels_last: bool) -> Data:
    """`data` with its images in NHWC (`channels_last`) or NCHW memory: the same values."""
    if data.channels_last == channels_last:
        return data
    layout = torch.channels_last if channels_last else torch.contiguous_format
    return replace(data, x=data.x.contiguous(memory_format=layout), xt=data.xt.contiguous(memory_format=layout),
                   channels_last=channels_last)


def new_model(config: TrainConfig, device: str, path: TrainPath) -> torch.nn.Module:
    torch.manual_seed(config.seed)  # the same initial weights however run() is called
    # under bf16 autocast the kernels do not apply (float32 only): the modules run, in channels_last
    fuse = config.fused_conv_pool and config.precision == "float32"
    return prepare_path(Net(), device, replace(path, conv1_kernel=path.conv1_kernel and fuse,
                                                conv2_kernel=path.conv2_kernel and fuse))


def train(config: TrainConfig, device: str, data: Data, path: TrainPath | None = None) -> Trained:
    """Train a fresh model on `data` along `path` (runners/cnn_model/tuning.choose; by default NHWC as the data
    is, both kernels) in one process, evaluating on the test split after each epoch."""
    model = new_model(config, device, path or TrainPath(data.channels_last, True, True))
    graphs = config.cuda_graphs and device.split(":")[0] == "cuda"
    optimizer = make_optimizer(model, config.lr, config.eps, capturable=graphs)
    stepper = graphed_step(model, optimizer, data.x, data.y, config.batch_size, graphs, config.precision)
    generator = torch.Generator().manual_seed(config.seed)
    rows, seconds = [], 0.0
    for epoch in range(1, data.epochs + 1):
        stats = train_epoch(model, optimizer, data.x, data.y, config.batch_size, generator, f"epoch {epoch}/{data.epochs}",
                            epoch, stepper)
        seconds += stats.seconds
        test_loss, test_acc, logits = loop.evaluate(model, data.xt, data.yt)
        rows.append([epoch, stats.loss, stats.accuracy, test_loss, test_acc])
    return Trained(model, rows, seconds, logits, options.describe_optimizer(optimizer), stepper.status)


def report(result: Result, data: Data, rows: list[list[float]], seconds: float, device: str, caption: str) -> None:
    """A training run's metrics and epoch table, under the names the cnn page uses."""
    result.text("data_source", data.description, title="所用数据", caption="训练和测试用的是哪些 MNIST 图片，从哪里读到。")
    metric(result, "test_accuracy", rows[-1][4])
    metric(result, "test_loss", rows[-1][3])
    metric(result, "profile", data.profile)
    metric(result, "epochs", data.epochs)
    metric(result, "train_images", len(data.y))
    metric(result, "test_images", len(data.yt))
    metric(result, "train_seconds", round(seconds, 3))
    metric(result, "images_per_second", round(len(data.y) * data.epochs / max(seconds, 1e-9), 1))
    metric(result, "data_official", data.official)
    metric(result, "device", device)
    result.table("epochs", EPOCH_COLUMNS, rows, caption=caption, title="每轮的损失与准确率", role="main")
