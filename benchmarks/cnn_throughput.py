"""Training throughput of the §2.5 CNN: our in-memory loop (runners/cnn.py) beside a plain DataLoader loop.

    python benchmarks/cnn_throughput.py [--images 8000] [--epochs 1] [--batch-size 64] [--repeats 1]
                                        [--threads 0] [--ablate] [--examples]

Each loop runs in its own subprocess (the script re-invokes itself with --loop), so the allocator
tuning of one cannot help the other, and both start from the same seed: the same initial weights
and, since DataLoader's RandomSampler draws torch.randperm from the seeded generator exactly as
training.batch_indices does, the same batches. Both are scored on the same evaluation images.
Data: runners.mnist.load_mnist(download=False) (offline: 8,000 train / 2,000 eval from t10k).

--ablate adds runs of our loop with one optimisation switched off each; --examples runs the
training runners with profile "full" and prints their wall time.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: `runners` is imported from the project
MARK = "RESULT "
LR, EPS = 1e-3, 1e-7  # the runner's defaults (Keras Adam)


def _data(images: int, seed: int) -> Any:
    from runners.mnist import load_mnist

    return load_mnist(download=False, seed=seed).subset(train=images)


def loop_ours(args: argparse.Namespace) -> dict[str, Any]:
    """Exactly runners/cnn.py's loop: resident tensors, index batches, channels_last, tuned allocator."""
    import torch

    from runners import training
    from runners.cnn_model import Net, make_optimizer, prepare_model, train_epoch

    allocator = "off" if args.no_allocator else training.tune_allocator()
    channels_last = not args.no_channels_last
    data = _data(args.images, args.seed)
    torch.manual_seed(args.seed)
    model = prepare_model(Net(), "cpu", channels_last)
    optimizer = make_optimizer(model, LR, EPS)
    generator = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    x = training.to_device_images(data.train.images, "cpu", channels_last)
    y = training.to_device_labels(data.train.labels, "cpu")
    for epoch in range(args.epochs):
        train_epoch(model, optimizer, x, y, args.batch_size, generator, f"epoch {epoch + 1}/{args.epochs}")
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    xt = training.to_device_images(data.test.images, "cpu", channels_last)
    loss, accuracy, _ = training.evaluate(model, xt, training.to_device_labels(data.test.labels, "cpu"))
    return {"train_s": train_s, "eval_s": time.perf_counter() - started, "accuracy": accuracy, "loss": loss,
            "images": len(y), "allocator": allocator, "channels_last": channels_last}


def loop_plain(args: argparse.Namespace) -> dict[str, Any]:
    """The idiomatic pytorch/examples loop: Dataset + per-sample transform + DataLoader, NCHW."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Dataset

    from runners.cnn_model import Net

    def to_tensor(image: np.ndarray) -> torch.Tensor:  # what torchvision's ToTensor does for a uint8 image
        return torch.from_numpy(image).float().div(255.0).unsqueeze(0)

    class MnistDataset(Dataset):
        def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Any) -> None:
            self.images, self.labels, self.transform = images, labels, transform

        def __len__(self) -> int:
            return len(self.labels)

        def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
            return self.transform(self.images[index]), int(self.labels[index])

    data = _data(args.images, args.seed)
    torch.manual_seed(args.seed)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, eps=EPS)
    started = time.perf_counter()
    train_loader = DataLoader(
        MnistDataset(data.train.images, data.train.labels, to_tensor), batch_size=args.batch_size,
        shuffle=True, num_workers=0, generator=torch.Generator().manual_seed(args.seed),
    )
    for _epoch in range(args.epochs):
        model.train()
        for inputs, target in train_loader:
            optimizer.zero_grad()
            output = model(inputs)
            loss = F.cross_entropy(output, target)
            loss.backward()
            optimizer.step()
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    test_loader = DataLoader(MnistDataset(data.test.images, data.test.labels, to_tensor), batch_size=1000)
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for inputs, target in test_loader:
            output = model(inputs)
            total_loss += F.cross_entropy(output, target, reduction="sum").item()
            correct += (output.argmax(1) == target).sum().item()
    n = len(test_loader.dataset)
    return {"train_s": train_s, "eval_s": time.perf_counter() - started, "accuracy": correct / n,
            "loss": total_loss / n, "images": len(train_loader.dataset)}


def child(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    record = loop_ours(args) if args.loop == "ours" else loop_plain(args)
    record.update(threads=torch.get_num_threads(), images_per_second=record["images"] * args.epochs / record["train_s"])
    print(MARK + json.dumps(record), flush=True)


def spawn(args: argparse.Namespace, loop: str, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--loop", loop, "--images", str(args.images),
               "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--threads", str(args.threads),
               "--seed", str(args.seed), *extra]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return json.loads(lines[-1][len(MARK):])


def examples(runs_dir: Path) -> list[tuple[str, str]]:
    """Wall time of each training runner (that has a `profile` config) run with profile "full"."""
    rows = []
    for name in ("cnn", "lstm", "gan"):
        if importlib.util.find_spec(f"runners.{name}") is None:
            rows.append((name, "absent"))
            continue
        fields = {f.name for f in dataclasses.fields(importlib.import_module(f"runners.{name}").Config)}
        if "profile" not in fields:
            rows.append((name, "no profile config"))
            continue
        out = runs_dir / name
        command = [sys.executable, "-m", "runners", name, "--out", str(out), "--config", '{"profile": "full"}']
        subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
        try:
            record = json.loads((out / "result.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rows.append((name, "no result.json (crashed)"))
            continue
        wall = record["provenance"]["wall_time_s"]
        rows.append((name, f"{wall:.1f} s ({record['status']}, device {record['provenance'].get('device')})"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8000, help="training images (offline split has 8,000)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1, help="runs per loop, alternating ours/plain")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ablate", action="store_true", help="also run our loop with each optimisation off")
    parser.add_argument("--examples", action="store_true", help="also time the training runners (profile full)")
    parser.add_argument("--loop", choices=("ours", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--no-channels-last", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-allocator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loop:
        child(args)
        return 0

    variants = {"ours": ("ours", []), "plain DataLoader": ("plain", [])}
    if args.ablate:
        variants["ours, NCHW (no channels_last)"] = ("ours", ["--no-channels-last"])
        variants["ours, no mallopt"] = ("ours", ["--no-allocator"])
        variants["ours, neither"] = ("ours", ["--no-channels-last", "--no-allocator"])
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(args.repeats):  # interleaved, so a burst of load elsewhere hits every loop alike
        for name, (loop, extra) in variants.items():
            runs[name].append(spawn(args, loop, extra))

    first = runs["ours"][0]
    print(f"CNN (000 §2.5) on CPU, {os.cpu_count()} cores, torch threads {first['threads']}: "
          f"{first['images']} training images x {args.epochs} epoch(s), batch {args.batch_size}, "
          f"{args.repeats} run(s) per loop (median; best in brackets)")
    print(f"{'loop':32} {'images/s':>18} {'train s':>8} {'eval s':>7} {'eval acc':>9} {'eval loss':>9}")
    median = {}
    for name, records in runs.items():
        rates = [r["images_per_second"] for r in records]
        median[name] = statistics.median(rates)
        last = records[-1]
        print(f"{name:32} {median[name]:9.0f} [{max(rates):6.0f}] {statistics.median(r['train_s'] for r in records):8.2f} "
              f"{statistics.median(r['eval_s'] for r in records):7.3f} {last['accuracy']:9.4f} {last['loss']:9.4f}")
    ratio = median["ours"] / median["plain DataLoader"]
    gap = abs(runs["ours"][-1]["accuracy"] - runs["plain DataLoader"][-1]["accuracy"])
    print(f"ratio ours / plain: {ratio:.2f}x (target >= 1.5x); accuracy difference {gap:.4f}")
    print(f"our allocator setting: {first['allocator']}")
    if args.examples:
        with tempfile.TemporaryDirectory() as tmp:
            print("\nfull-profile wall time of the training runners:")
            for name, text in examples(Path(tmp)):
                print(f"  {name:6} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
