"""Training throughput of the §2.5 CNN against the machine's limit and against a plain DataLoader loop.

    python benchmarks/cnn_throughput.py [--images 60000] [--epochs 1] [--batch-size 64] [--repeats 3]
                                        [--device cpu|cuda] [--threads 0] [--ablate] [--bf16] [--examples]

One run prints:
- R, the float32 matrix-multiply rate of this device (best of several 4096×4096 `torch.mm`);
- the FLOPs of one training sample (forward + backward), counted by torch.utils.flop_counter;
- our loop (exactly runners/cnn.py's: runners/cnn_model/steps.py's train_epoch and make_optimizer, the
  training path tuning.py chose for this machine (path "auto": measured on its first run, then read from
  the per-machine record; LIVING_TUNING_DIR moves it), net.py's prepare_path and the allocator setting), every
  candidate path of runners/cnn_model/tuning.py's CANDIDATES forced by name, and a plain pytorch/examples-style loop (Dataset + per-sample ToTensor-like
  transform + DataLoader, NCHW, torch's default Adam, ReLU before pooling as in the article) on the same model, batch size and images:
  images/s, the ratio ours / plain, how far ours is behind the best candidate, and our FLOP rate as a share of R;
  the CPU model and whether it has AVX-512 are printed with them. FLOP rates count the counter's FLOPs (those
  of direct convolutions), as the issue does; where our loop ran conv2 through the Winograd kernel
  (runners/kernels/winograd_pool.py), which does fewer, a second line gives the rate in the FLOPs it did.

Every loop, and R, runs in its own subprocess (the script re-invokes itself with --loop), so one
loop's allocator tuning cannot help another; rounds are interleaved (R, ours, plain, ...) so a burst
of load elsewhere hits all alike, and medians are printed. Both loops start from the same initial
weights; their batch orders differ (DataLoader draws a worker seed from the generator before it
shuffles), so their accuracies agree only to within the spread that order and rounding give.

Data: the offline split (runners.mnist.loader.load_mnist(download=False): 8,000 training and 2,000 held-out
images from the official t10k file, or the real training split where it is present) with the
training images repeated up to --images (default 60,000, one epoch of the article), so an epoch is
as long as the article's; accuracy is measured on the real held-out images.

--no-candidates leaves the candidate paths out (--candidates nchw,both_kernels runs only those); --ablate adds runs of our loop with one optimisation switched off each; --bf16 one with the runners'
opt-in precision="bf16" (bfloat16 autocast), compared with the bfloat16 product rate as well as R; --with-compile one with the
whole step compiled by torch.compile (its compile time counted as training); --examples runs the
training runners (cnn, lstm, gan, cnn_ddp) with profile "full" as the site does (a fresh process each) and
prints wall time, training time, images/s and the share of wall time spent outside training.
--profile-step prints, instead, the FLOPs of each layer and the ops one step of our loop spends its
time in (torch.profiler). --device cuda measures the GPU path (CUDA graphs, fused Adam, data resident on the device).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine_info import cpu_summary  # benchmarks/machine_info.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `runners` is imported from the project
MARK = "RESULT "
LR, EPS = 1e-3, 1e-7  # the runner's defaults (Keras Adam)
TRAINING_RUNNERS = ("cnn", "lstm", "gan", "cnn_ddp")  # the registry's profiles=True runners: those that train
ABLATIONS = {  # variant name -> flags of our loop
    "ours, unfused and NCHW": ["--no-fused-conv-pool", "--no-channels-last"],
    "ours, glibc malloc defaults": ["--no-allocator"],
    "ours, torch's default Adam": ["--no-fused-adam"],
    "ours, ReLU before pooling": ["--relu-first"],
    "ours, conv blocks unfused": ["--no-fused-conv-pool"],
    "ours, conv2 block unfused": ["--no-winograd"],
}
PATH_PREFIX = "path "  # a candidate path forced by name: "path both_kernels"
BF16 = "ours, bf16 autocast (opt-in)"  # runners' precision="bf16": not the article's float32 arithmetic


def _data(args: argparse.Namespace) -> Any:
    """(train images, train labels, eval images, eval labels) as numpy; training images tiled to --images."""
    import numpy as np

    from runners.mnist.loader import load_mnist

    data = load_mnist(download=False, seed=args.seed)
    reps = -(-args.images // len(data.train.labels))
    images = np.concatenate([data.train.images] * reps)[: args.images]
    labels = np.concatenate([data.train.labels] * reps)[: args.images]
    return images, labels, data.test.images, data.test.labels


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def loop_matmul(args: argparse.Namespace) -> dict[str, Any]:
    """R: the float32 `torch.mm` rate of a large square product (best of 5 after a warm-up)."""
    import torch

    n = args.matmul_size or (4096 if args.device == "cpu" else 8192)
    dtype = torch.bfloat16 if args.matmul_dtype == "bf16" else torch.float32
    a, b = (torch.randn(n, n, device=args.device, dtype=dtype) for _ in range(2))
    torch.mm(a, b)
    best = float("inf")
    for _ in range(5):
        _sync(args.device)
        started = time.perf_counter()
        torch.mm(a, b)
        _sync(args.device)
        best = min(best, time.perf_counter() - started)
    return {"gflops": 2 * n**3 / best / 1e9, "n": n, "dtype": args.matmul_dtype}


def layer_flops(batch_size: int) -> dict[str, float]:
    """FLOPs of one training batch (forward + backward) per layer of the model, by torch.utils.flop_counter
    (on the modules: the counter does not see inside the fused kernels; see `arithmetic_per_sample`)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from runners.cnn_model.net import Net

    model, x = Net(), torch.zeros(batch_size, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(batch_size, dtype=torch.long)).backward()
    return {name.split(".")[1]: float(sum(ops.values())) for name, ops in counter.get_flop_counts().items()
            if name.count(".") == 1}  # Net.conv1 …: the model's own layers


def flops_per_sample(batch_size: int) -> float:
    return sum(layer_flops(batch_size).values()) / batch_size


def arithmetic_per_sample(batch_size: int, winograd: bool) -> float:
    """FLOPs our loop actually does per sample: the counter's, with conv2's three products replaced by
    the Winograd kernel's when it ran (the first block's kernel does the direct convolution's work)."""
    from runners.kernels import winograd_pool

    layers = layer_flops(batch_size)
    if not winograd:
        return sum(layers.values()) / batch_size
    return (sum(layers.values()) - layers["conv2"]) / batch_size + winograd_pool.ARITHMETIC_PER_IMAGE


def article_order_net() -> type:
    """runners.cnn_model.net.Net with the article's Conv2D(activation="relu") → MaxPooling2D order, as a
    straight port would write it (bit-identical results to ours: tests/runners/test_cnn.py)."""
    import torch

    from runners.cnn_model.net import Net

    class ArticleOrderNet(Net):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.pool1(self.relu1(self.conv1(x)))
            x = self.pool2(self.relu2(self.conv2(x)))
            return self.fc2(self.relu4(self.fc1(self.flatten(self.relu3(self.conv3(x))))))

    return ArticleOrderNet


def _our_loop(args: argparse.Namespace) -> dict[str, Any]:
    """runners/cnn.py's model, optimizer, resident data and step along its training path (--path: "auto", the
    tuned one, or a candidate), with the optimisations the flags leave on."""
    import dataclasses
    from types import SimpleNamespace

    import torch

    from runners.cnn_model import tuning
    from runners.cnn_model.net import Net, kernel_status, prepare_path
    from runners.cnn_model.steps import graphed_step, make_optimizer
    from runners.training.loop import to_device_images, to_device_labels
    from runners.training.options import tune_allocator

    allocator = "off" if args.no_allocator else tune_allocator()
    model_class = article_order_net() if args.relu_first else Net
    device = args.device
    images, labels, test_images, test_labels = _data(args)
    # the kernel is conv → pool → ReLU in float32: ReLU-first has no such pair, bf16 runs the modules
    fuse = not (args.no_fused_conv_pool or args.relu_first) and args.precision == "float32"
    config = SimpleNamespace(path=args.path, precision=args.precision, channels_last=not args.no_channels_last,
                             fused_conv_pool=fuse, batch_size=args.batch_size, lr=LR, eps=EPS, seed=args.seed)
    compile_s = tuning.build_kernels(device, fuse, args.precision)  # before anything is timed, as in the runner
    y = to_device_labels(labels, device)
    chosen = tuning.choose(config, device, to_device_images(images[:4096], device, True), y[:4096])
    path = dataclasses.replace(chosen.path, conv2_kernel=False) if args.no_winograd else chosen.path
    channels_last = path.channels_last
    torch.manual_seed(args.seed)
    model = prepare_path(model_class(), device, path)
    graphs = device == "cuda"
    if args.no_fused_adam:
        optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=LR, eps=EPS, capturable=graphs)
    else:
        optimizer = make_optimizer(model, LR, EPS, capturable=graphs)
    _sync(device)
    started = time.perf_counter()
    x = to_device_images(images, device, channels_last)
    _sync(device)
    transfer_s = time.perf_counter() - started
    stepper = graphed_step(model, optimizer, x, y, args.batch_size, graphs, args.precision)
    record = chosen.tuning
    return {"model": model, "optimizer": optimizer, "x": x, "y": y, "stepper": stepper, "transfer_s": transfer_s,
            "allocator": allocator, "channels_last": channels_last, "test": (test_images, test_labels),
            "conv_pool": kernel_status(device, fuse, args.precision, (path.conv1_kernel, path.conv2_kernel)),
            "arithmetic_per_sample": arithmetic_per_sample(args.batch_size, model.fused_blocks[1]),
            "path": chosen.name, "path_how": chosen.how, "kernel_compile_s": compile_s,
            "tuning": {"rates": record.rates, "when": record.when, "fresh": record.fresh, "seconds": record.seconds,
                       "threads": record.threads, "spread": record.spread, "load": record.load} if record else None}


def loop_ours(args: argparse.Namespace) -> dict[str, Any]:
    """Exactly runners/cnn.py's loop, with the optimisations the flags leave on."""
    import torch

    from runners.cnn_model.steps import train_epoch
    from runners.training.loop import evaluate, to_device_images, to_device_labels
    from runners.training.options import describe_optimizer

    loop = _our_loop(args)
    model, optimizer, x, y, stepper = (loop[k] for k in ("model", "optimizer", "x", "y", "stepper"))
    if args.compile:  # the whole step through torch.compile (inductor); compile time counts as training time
        stepper.step = torch.compile(stepper.step)
    generator = torch.Generator().manual_seed(args.seed)
    train_s = sum(train_epoch(model, optimizer, x, y, args.batch_size, generator, f"epoch {e + 1}", e + 1, stepper).seconds
                  for e in range(args.epochs))
    test_images, test_labels = loop["test"]
    xt = to_device_images(test_images, args.device, loop["channels_last"])
    loss, accuracy, _ = evaluate(model, xt, to_device_labels(test_labels, args.device))
    return {"train_s": train_s, "transfer_s": loop["transfer_s"], "accuracy": accuracy, "loss": loss, "images": len(y),
            "allocator": loop["allocator"], "channels_last": loop["channels_last"],
            "optimizer": describe_optimizer(optimizer), "cuda_graph": stepper.status, "precision": args.precision,
            "conv_pool": loop["conv_pool"], "arithmetic_per_sample": loop["arithmetic_per_sample"],
            **{k: loop[k] for k in ("path", "path_how", "kernel_compile_s", "tuning")}}


def profile_step(args: argparse.Namespace, steps: int = 50, warmup: int = 30) -> None:
    """Where one step of our loop spends its time: FLOPs per layer, then torch.profiler's costliest ops."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    loop = _our_loop(args)
    stepper, n = loop["stepper"], len(loop["y"])
    generator = torch.Generator().manual_seed(args.seed)
    batches = [torch.randperm(n, generator=generator)[: args.batch_size].to(args.device) for _ in range(warmup + steps)]
    print(f"FLOPs of one step (batch {args.batch_size}) by layer, forward + backward:")
    for name, flops in layer_flops(args.batch_size).items():
        print(f"  {name:8} {flops / 1e6:9.1f} MFLOP")
    for idx in batches[:warmup]:
        stepper(idx)
    _sync(args.device)
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for idx in batches[warmup:]:
            stepper(idx)
        _sync(args.device)
    step_ms = (time.perf_counter() - started) / steps * 1e3
    print(f"one step: {step_ms:.2f} ms under the profiler ({args.batch_size / step_ms * 1e3:.0f} images/s); "
          f"costliest ops, self CPU time per step:")
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    for event in events[:15]:
        shapes = ", ".join(str(list(s)) for s in event.input_shapes[:3] if s)
        print(f"  {event.self_cpu_time_total / steps / 1e3:7.3f} ms  x{event.count // steps}  {event.key}  {shapes}")


def loop_plain(args: argparse.Namespace) -> dict[str, Any]:
    """The idiomatic pytorch/examples loop: Dataset + per-sample transform + DataLoader, NCHW, default Adam,
    the layers in the article's order."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Dataset

    def to_tensor(image: np.ndarray) -> torch.Tensor:  # what torchvision's ToTensor does for a uint8 image
        return torch.from_numpy(image).float().div(255.0).unsqueeze(0)

    class MnistDataset(Dataset):
        def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
            self.images, self.labels = images, labels

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
            return to_tensor(self.images[index]), int(self.labels[index])

    device = args.device
    images, labels, test_images, test_labels = _data(args)
    torch.manual_seed(args.seed)
    model = article_order_net()().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, eps=EPS)
    loader = DataLoader(MnistDataset(images, labels), batch_size=args.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(args.seed))
    _sync(device)
    started = time.perf_counter()
    for _epoch in range(args.epochs):
        model.train()
        for inputs, target in loader:
            inputs, target = inputs.to(device), target.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(inputs), target)
            loss.backward()
            optimizer.step()
    _sync(device)
    train_s = time.perf_counter() - started
    model.eval()
    correct, total_loss = 0, 0.0
    with torch.no_grad():
        for inputs, target in DataLoader(MnistDataset(test_images, test_labels), batch_size=1000):
            output = model(inputs.to(device))
            total_loss += F.cross_entropy(output, target.to(device), reduction="sum").item()
            correct += (output.argmax(1).cpu() == target).sum().item()
    return {"train_s": train_s, "accuracy": correct / len(test_labels), "loss": total_loss / len(test_labels),
            "images": len(labels)}


def child(args: argparse.Namespace) -> None:
    if args.threads:  # as reportgen's child gives a runner N threads: the tuning record is per thread count
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.loop == "profile":
        profile_step(args)
        return
    record = {"matmul": loop_matmul, "ours": loop_ours, "plain": loop_plain}[args.loop](args)
    if "train_s" in record:
        record["images_per_second"] = record["images"] * args.epochs / record["train_s"]
    if args.loop == "matmul":
        record["flops_per_sample"] = flops_per_sample(args.batch_size)
    record["threads"] = torch.get_num_threads()
    print(MARK + json.dumps(record), flush=True)


def spawn(args: argparse.Namespace, loop: str, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--loop", loop, "--images", str(args.images),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--threads", str(args.threads),
               "--seed", str(args.seed), "--device", args.device, "--matmul-size", str(args.matmul_size), *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return json.loads(lines[-1][len(MARK):])


def examples(runs_dir: Path, device: str) -> None:
    """Each training runner at profile "full", started as the site starts it; prints a row each and the total."""
    print(f"\ntraining runners at profile full on {device} (each a fresh `python -m reportgen.child NAME` process):")
    print(f"{'runner':8} {'wall s':>7} {'train s':>8} {'images/s':>9} {'outside training':>17}  status")
    total = 0.0
    for name in TRAINING_RUNNERS:
        out = runs_dir / name
        command = [sys.executable, "-m", "reportgen.child", name, "--registry", "runners.registry", "--out", str(out),
                   "--device", device, "--config", '{"profile": "full"}']
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
        wall = time.perf_counter() - started
        total += wall
        try:
            record = json.loads((out / "result.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            print(f"{name:8} {wall:7.1f}  no result.json (crashed)")
            continue
        metrics = record.get("result", {}).get("metrics", {})
        train = float(metrics.get("train_seconds", "nan"))
        epochs, images = metrics.get("epochs", 0), metrics.get("train_images", 0)
        rate = epochs * images / train if train == train and train > 0 else float("nan")
        print(f"{name:8} {wall:7.1f} {train:8.2f} {rate:9.0f} {(wall - train) / wall:16.0%}  "
              f"{record.get('status')} on {record['provenance'].get('device_name')}")
    print(f"{'total':8} {total:7.1f}   (target on an H100: under 60 s including start-up)")


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]]) -> None:
    r = statistics.median(run["gflops"] for run in runs["matmul"])
    flops = runs["matmul"][0]["flops_per_sample"]
    ours = runs["ours"][0]
    print(f"CPU: {cpu_summary()}")
    print(f"CNN (000 §2.5) training on {args.device}, {os.cpu_count()} cores, torch threads {ours['threads']}; "
          f"{ours['images']:,} images x {args.epochs} epoch(s), batch {args.batch_size}; "
          f"{args.repeats} interleaved round(s), medians [range]")
    print(f"R (float32 torch.mm {runs['matmul'][0]['n']}²): {r:.1f} GFLOP/s "
          f"[{min(x['gflops'] for x in runs['matmul']):.1f}-{max(x['gflops'] for x in runs['matmul']):.1f}]")
    print(f"FLOPs per training sample (forward + backward, torch.utils.flop_counter): {flops / 1e6:.2f} MFLOP; "
          f"one epoch of {ours['images']:,}: {flops * ours['images'] / 1e12:.3f} TFLOP, "
          f"no faster than {flops * ours['images'] / (r * 1e9):.1f} s at R")
    print(f"{'loop':32} {'images/s':>17} {'train s':>8} {'GFLOP/s':>8} {'of R':>5} {'eval acc':>9}")
    median = {}
    for name, records in runs.items():
        if name.startswith("matmul"):
            continue
        rates = [x["images_per_second"] for x in records]
        median[name] = statistics.median(rates)
        gflops = median[name] * flops / 1e9
        print(f"{name:32} {median[name]:7.0f} [{min(rates):.0f}-{max(rates):.0f}] "
              f"{statistics.median(x['train_s'] for x in records):8.2f} {gflops:8.1f} {gflops / r:5.0%} "
              f"{records[-1]['accuracy']:9.4f}")
    ratios = [o["images_per_second"] / p["images_per_second"] for o, p in zip(runs["ours"], runs["plain DataLoader"], strict=True)]
    share = median["ours"] * flops / 1e9 / r
    print(f"ours / plain: {median['ours'] / median['plain DataLoader']:.2f}x (per round {min(ratios):.2f}-{max(ratios):.2f}x; "
          f"target >= 1.5x); ours at {share:.0%} of R (target >= 65%)")
    candidates = {name[len(PATH_PREFIX):]: rate for name, rate in median.items() if name.startswith(PATH_PREFIX)}
    if candidates:
        best = max(candidates, key=lambda name: candidates[name])
        print(f"ours vs best candidate (path {best}, {candidates[best]:.0f} images/s): "
              f"{median['ours'] / candidates[best] - 1:+.1%} (target: no more than 5% behind); ours took path {ours['path']}")
    done = ours["arithmetic_per_sample"]
    if done < flops * 0.999:  # conv2 ran through the Winograd kernel: fewer FLOPs than the counter's
        print(f"  counted in the FLOPs our loop actually does ({done / 1e6:.2f} MFLOP per sample, conv2 by Winograd): "
              f"{median['ours'] * done / 1e9:.1f} GFLOP/s, {median['ours'] * done / 1e9 / r:.0%} of R")
    if "matmul bf16" in runs:  # the opt-in bf16 loop, against the bf16 product rate
        r16 = statistics.median(run["gflops"] for run in runs["matmul bf16"])
        bf16 = median[BF16]
        print(f"R (bfloat16 torch.mm {runs['matmul bf16'][0]['n']}²): {r16:.1f} GFLOP/s; {BF16} / plain: "
              f"{bf16 / median['plain DataLoader']:.2f}x; at {bf16 * flops / 1e9 / r16:.0%} of the bfloat16 rate "
              f"({bf16 * flops / 1e9 / r:.0%} of R)")
    tuned = ours["tuning"]
    if tuned:
        rates = "; ".join(f"{k} {v:.0f}" for k, v in sorted(tuned["rates"].items(), key=lambda kv: -kv[1]))
        now = f", in this run: {tuned['seconds']:.1f} s" if tuned["fresh"] else ""
        print(f"tuning record (threads {tuned['threads']}, measured {tuned['when']}{now}; load average {tuned['load']:g}, "
              f"round spread {tuned['spread']:g}): {rates} images/s")
    print(f"our path: {ours['path_how']}; kernels built/loaded in {ours['kernel_compile_s']:.3f} s (not in train s)")
    print(f"our loop used: {ours['optimizer']}; allocator: {ours['allocator']}; channels_last {ours['channels_last']}; "
          f"CUDA graph: {ours['cuda_graph']}; conv → pool → ReLU kernels: {ours['conv_pool']}; data to device {ours['transfer_s']:.3f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=60000, help="training images per epoch (tiled from the split)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds of every loop")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--matmul-size", type=int, default=0, help="side of the square product for R (0: 4096 on CPU, 8192 on GPU)")
    parser.add_argument("--ablate", action="store_true", help="also run our loop with each optimisation off")
    parser.add_argument("--examples", action="store_true", help="also time the training runners (profile full)")
    parser.add_argument("--loop", choices=("matmul", "ours", "plain", "profile"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-step", action="store_true", help="only profile one step of our loop, per op")
    parser.add_argument("--with-compile", action="store_true", help="also run our loop through torch.compile (slow)")
    parser.add_argument("--bf16", action="store_true", help="also run our loop with the runner's opt-in precision='bf16'")
    parser.add_argument("--no-candidates", action="store_true", help="leave out the runs of each candidate path")
    parser.add_argument("--candidates", default="", help="comma-separated candidate paths to run (default: all of them)")
    parser.add_argument("--save-runs", type=Path, help="also write every loop's raw records (JSON) to this file")
    parser.add_argument("--path", default="auto", help=argparse.SUPPRESS)
    for flag in ("--no-channels-last", "--no-allocator", "--no-fused-adam", "--relu-first", "--compile", "--no-fused-conv-pool",
                 "--no-winograd"):
        parser.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--matmul-dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loop:
        child(args)
        return 0
    if args.profile_step:  # in this process: the allocator setting then applies to it alone
        profile_step(args)
        return 0

    variants = {"matmul": ("matmul", []), "ours": ("ours", []), "plain DataLoader": ("plain", [])}
    if not args.no_candidates:
        from runners.cnn_model.tuning import CANDIDATES

        wanted = [name.strip() for name in args.candidates.split(",") if name.strip()] or list(CANDIDATES)
        unknown = [name for name in wanted if name not in CANDIDATES]
        if unknown:
            parser.error(f"--candidates: unknown path(s) {', '.join(unknown)}; the paths are {', '.join(CANDIDATES)}")
        variants.update({PATH_PREFIX + name: ("ours", ["--path", name]) for name in wanted})
    if args.ablate:
        variants.update({name: ("ours", flags) for name, flags in ABLATIONS.items()})
    if args.with_compile:
        variants["ours + torch.compile"] = ("ours", ["--compile"])
    if args.bf16:
        variants[BF16] = ("ours", ["--precision", "bf16"])
        variants["matmul bf16"] = ("matmul", ["--matmul-dtype", "bf16"])
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(args.repeats):  # interleaved, so a burst of load elsewhere hits every loop alike
        for name, (loop, extra) in variants.items():
            runs[name].append(spawn(args, loop, extra))
    if args.save_runs:
        args.save_runs.write_text(json.dumps(runs, ensure_ascii=False, indent=1), encoding="utf-8")
    report(args, runs)
    if args.examples:
        with tempfile.TemporaryDirectory() as tmp:
            examples(Path(tmp), args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
