"""The §2.5 CNN trained exactly as runners/cnn.py trains it, for the deployment runners.

cnn_onnx, cnn_compress and cnn_ddp each train their own model (a runner's result must follow
from its own code and config, not from another runner's cache) with the same data rules, seed,
model, optimizer and `train_epoch` as `runners.cnn`: on a CPU, the same config gives the same
weights bit for bit. Their quick budget defaults to one epoch (the cnn runner's first epoch),
so a site build stays short on a 2-core CPU.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

import torch

from runners import training
from reportgen.api import Result
from runners.cnn_model import Net, graphed_step, make_optimizer, prepare_model, train_epoch
from runners.mnist import load_mnist

EPOCH_COLUMNS = ["轮次", "训练损失", "训练准确率", "测试损失", "测试准确率"]  # the cnn runner's table


@dataclass(frozen=True)
class TrainConfig:
    """The cnn runner's training fields; runners subclass it and add their own."""

    profile: str = "auto"  # auto: full on an accelerator, quick on a CPU
    epochs: int = 5  # the article's fit(epochs=5)
    batch_size: int = 64
    lr: float = 1e-3  # Keras Adam defaults, as in runners/cnn.py
    eps: float = 1e-7
    train_limit: int = 0
    test_limit: int = 0
    quick_train: int = 8000
    quick_epochs: int = 1  # the cnn runner's default is 2; one epoch keeps each of these runners short
    data_dir: str = ""
    download: bool = True
    seed: int = 0
    channels_last: bool = True
    fused_conv_pool: bool = True  # on a CPU, each conv → pool → ReLU block as one C kernel, as the cnn runner's option
    precision: str = "float32"  # "bf16": bfloat16 autocast, as the cnn runner's option


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


@dataclass
class Trained:
    model: torch.nn.Module
    rows: list[list[float]]  # per epoch: epoch, train loss, train accuracy, test loss, test accuracy
    seconds: float


def load(config: TrainConfig, device: str) -> Data:
    """The data of runners/cnn.py for this config (same profile rules, subset and layout)."""
    kind = torch.device(device).type  # "cuda:1" (a DDP rank's device) is a CUDA device too
    profile = training.resolve_profile(config.profile, kind)
    data = load_mnist(config.data_dir, config.download)
    epochs = config.epochs if profile == "full" else config.quick_epochs
    limits = [n for n in (config.train_limit, config.quick_train if profile == "quick" else 0) if n > 0]
    data = data.subset(train=min(limits) if limits else None, test=config.test_limit or None)
    note = f"quick 档：只训练 {epochs} 轮、至多 {config.quick_train:,} 张训练图片（文中是 {config.epochs} 轮全部图片）。" if profile == "quick" else ""
    channels_last = config.channels_last and kind == "cpu"
    return Data(
        profile, epochs,
        training.to_device_images(data.train.images, device, channels_last),
        training.to_device_labels(data.train.labels, device),
        training.to_device_images(data.test.images, device, channels_last),
        training.to_device_labels(data.test.labels, device),
        data.description + note, data.official, channels_last,
    )


def new_model(config: TrainConfig, device: str, channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(config.seed)  # the same initial weights however run() is called
    fuse = config.fused_conv_pool and config.precision == "float32"  # the kernels are float32 only, as in runners/cnn.py
    return prepare_model(Net(), device, channels_last, fuse)


def train(config: TrainConfig, device: str, data: Data) -> Trained:
    """The training loop of runners/cnn.py, line for line (single process)."""
    model = new_model(config, device, data.channels_last)
    graphs = device.split(":")[0] == "cuda"  # as the cnn runner's default cuda_graphs=True
    optimizer = make_optimizer(model, config.lr, config.eps, capturable=graphs)
    stepper = graphed_step(model, optimizer, data.x, data.y, config.batch_size, graphs, config.precision)
    generator = torch.Generator().manual_seed(config.seed)
    rows, seconds = [], 0.0
    for epoch in range(1, data.epochs + 1):
        stats = train_epoch(model, optimizer, data.x, data.y, config.batch_size, generator, f"epoch {epoch}/{data.epochs}",
                            epoch, stepper)
        seconds += stats.seconds
        test_loss, test_acc, _ = training.evaluate(model, data.xt, data.yt)
        rows.append([epoch, stats.loss, stats.accuracy, test_loss, test_acc])
    return Trained(model, rows, seconds)


def report(result: Result, config: TrainConfig, data: Data, rows: list[list[float]], seconds: float, device: str) -> None:
    """The cnn runner's training metrics and epoch table, under the same names."""
    result.text("data_source", data.description)
    result.metric("profile", data.profile)
    result.metric("epochs", data.epochs)
    result.metric("train_images", len(data.y))
    result.metric("test_images", len(data.yt))
    result.metric("test_accuracy", rows[-1][4])
    result.metric("test_loss", rows[-1][3])
    result.metric("train_seconds", round(seconds, 3))
    result.metric("images_per_second", round(len(data.y) * data.epochs / max(seconds, 1e-9), 1))
    result.metric("data_official", data.official)
    result.metric("device", device)
    result.table("epochs", EPOCH_COLUMNS, rows,
                 caption="训练损失与准确率是该轮各批次的平均；测试列在每轮结束时以评估模式计算（与 cnn 运行器同一算法）。")
    result.text("same_as_cnn", same_as_cnn(config, data.profile))


def same_as_cnn(config: TrainConfig, profile: str) -> str:
    """Say on the page which cnn runner config gives these weights (cnn's defaults are read, not copied)."""
    # imported here, not at the top: DDP workers then need not import matplotlib
    from runners.cnn import Config as CnnConfig

    names = [f.name for f in fields(TrainConfig) if f.name not in ("data_dir", "download")]
    settings = "，".join(f"{n}={getattr(config, n)}" for n in names).replace(
        f"profile={config.profile}", f"profile={config.profile}（本次为 {profile}）" if config.profile != profile else f"profile={profile}")
    # profile is left out: the DDP runner passes the resolved one ("quick"), which is what cnn's "auto" becomes on a CPU
    differs = [n for n in names if n != "profile" and getattr(config, n) != getattr(CnnConfig(), n, None)]
    text = ("本页的模型由 cnn 运行器（000 §2.5）的同一段代码训练：cnn_model.Net、make_optimizer、train_epoch，"
            f"同一数据规则、种子与 quick/full 档位规则。训练设置：{settings}。在 CPU 上，cnn 运行器取相同设置、"
            f"相同线程数（本次 {torch.get_num_threads()} 个；线程数不同时求和顺序不同，只差浮点舍入）时得到逐位相同的权重。")
    if differs == ["quick_epochs"] and config.quick_epochs < CnnConfig().quick_epochs:
        text += (f"与 cnn 运行器的默认设置只差 quick_epochs（这里 {config.quick_epochs} 轮，为缩短建站时间；cnn 为 "
                 f"{CnnConfig().quick_epochs} 轮）：quick 档下本页的模型就是 cnn 页面模型第 {config.quick_epochs} 轮结束时的权重，"
                 f"测试准确率等于 cnn 页面轮次表第 {config.quick_epochs} 行的测试准确率。")
    elif differs:
        text += f"与 cnn 运行器的默认设置不同的是：{'、'.join(differs)}。"
    return text


def eval_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A CPU float32 copy in plain NCHW layout and eval mode: what gets exported, compressed and timed."""
    clone = Net()
    clone.load_state_dict({k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()})
    return clone.eval()


def nchw(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to("cpu").contiguous()


@contextlib.contextmanager
def threads(n: int) -> Iterator[int]:
    """torch's intra-op threads set to n (0: unchanged) inside the block, restored after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n or previous)
    try:
        yield n or previous
    finally:
        torch.set_num_threads(previous)


def median_seconds(fn: Callable[[], object], runs: int, warmup: int = 5) -> float:
    """Median wall time of fn() after warm-up (the median shrugs off scheduler hiccups on a shared machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def sig3(x: float) -> float:
    """Three significant digits: timings on a shared machine are not more precise than that."""
    return float(f"{x:.3g}")


def state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> tuple[float, torch.Tensor]:
    logits = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    return (logits.argmax(1) == y).float().mean().item(), logits
